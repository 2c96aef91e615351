// Package config loads and validates the exporter's YAML configuration.
//
// Parsing is strict: unknown fields are rejected, and every error names the
// file, the line and the field, and says what was expected. Secrets are never
// written inline; they are read from a file or an environment variable.
package config

import (
	"strings"
	"time"
)

// Config is the whole configuration file.
type Config struct {
	Global              Global              `yaml:"global"`
	Kerberos            Kerberos            `yaml:"kerberos"`
	Domains             []Domain            `yaml:"domains"`
	SQLInstances        []SQLInstance       `yaml:"sql_instances"`
	Services            []Service           `yaml:"services"`
	DelegatedPrincipals DelegatedPrincipals `yaml:"delegated_principals"`
	DNS                 DNS                 `yaml:"dns"`
	Thresholds          Thresholds          `yaml:"thresholds"`
	// Discovery, when set, adds the SQL Servers found from their MSSQLSvc/
	// SPNs to sql_instances at run time.
	Discovery *Discovery `yaml:"discovery"`

	// File is the path the configuration was loaded from.
	File string `yaml:"-"`
	// Warnings are settings that are allowed but weaken security (a
	// group-readable secret file, insecure_skip_verify); whoever loads the
	// configuration logs them.
	Warnings []string `yaml:"-"`
}

// Global holds settings for the background collection loop.
type Global struct {
	// CollectionInterval is how often every collector runs in the background.
	CollectionInterval Duration `yaml:"collection_interval"`
	// CollectorTimeout bounds one collector's run; every network call inside
	// it honours the same deadline.
	CollectorTimeout Duration `yaml:"collector_timeout"`
	// SPNScanInterval is how often the forest-wide duplicate SPN scan runs,
	// on its own schedule; after the first, each scan reads only the
	// accounts changed since the last one.
	SPNScanInterval Duration `yaml:"spn_scan_interval"`
	// SPNFullScanInterval is how often that scan reads every account again,
	// which is what catches deleted accounts.
	SPNFullScanInterval Duration `yaml:"spn_full_scan_interval"`
	// MaxConcurrentInstances bounds how many SQL instances are talked to at
	// once in a cycle; the others wait for a free slot.
	MaxConcurrentInstances int `yaml:"max_concurrent_instances"`
	// DNSConcurrency bounds the DNS host checks in flight in a cycle, and
	// KDCConcurrency the service-ticket requests in flight (one login to
	// the KDC each).
	DNSConcurrency int `yaml:"dns_concurrency"`
	KDCConcurrency int `yaml:"kdc_concurrency"`
	// DNSCacheTTL is how long a host's DNS answers are reused across
	// cycles, and KDCTicketCacheTTL an SPN's ticket-request outcome; 0
	// looks everything up every cycle. A failure is kept at most
	// FailedLookupTTL. Nil until defaults are applied.
	DNSCacheTTL       *Duration `yaml:"dns_cache_ttl"`
	KDCTicketCacheTTL *Duration `yaml:"kdc_ticket_cache_ttl"`
}

// FailedTTL is how long a failed lookup is kept when successes are kept
// for ttl: never longer than FailedLookupTTL, so that a repair shows soon.
func FailedTTL(ttl time.Duration) time.Duration { return min(ttl, FailedLookupTTL) }

// Kerberos is the exporter's own Kerberos identity, used for KDC probes,
// GSSAPI LDAP binds and Kerberos SQL logins unless a section overrides it.
type Kerberos struct {
	Realm      string  `yaml:"realm"`
	Krb5Config string  `yaml:"krb5_config"`
	Principal  string  `yaml:"principal"`
	KeytabFile string  `yaml:"keytab_file"`
	CCacheFile string  `yaml:"ccache_file"`
	Password   *Secret `yaml:"password"`
	// Probe asks the KDC for a service ticket for every expected SPN.
	Probe *bool `yaml:"probe"`
	// OfferedETypes are the encryption types the probe offers the KDC, in
	// order; empty means what a current Windows client offers.
	OfferedETypes []string `yaml:"offered_etypes"`
	// RC4Enforced says the domain controllers already refuse RC4 service
	// tickets for accounts without msDS-SupportedEncryptionTypes (the 2026
	// enforcement of CVE-2026-20833): accounts without AES keys are then
	// broken, not at risk.
	RC4Enforced bool `yaml:"rc4_enforced"`
}

// DefaultOfferedETypes is what a current Windows client offers in a TGS-REQ,
// in its order (DES is off by default since Windows 7).
var DefaultOfferedETypes = []string{"aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96", "rc4-hmac"}

// OfferableETypes are the names offered_etypes accepts: the types the
// exporter's Kerberos library can read a ticket reply in.
var OfferableETypes = []string{
	"aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96",
	"aes256-cts-hmac-sha384-192", "aes128-cts-hmac-sha256-128", "rc4-hmac",
}

// Offerable says whether offered_etypes accepts name.
func Offerable(name string) bool {
	for _, n := range OfferableETypes {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// Offered is the list of encryption types the probe offers.
func (k *Kerberos) Offered() []string {
	if len(k.OfferedETypes) == 0 {
		return DefaultOfferedETypes
	}
	return k.OfferedETypes
}

// Domain is one Active Directory domain and the domain controllers to ask.
type Domain struct {
	Name              string   `yaml:"name"`         // DNS name, e.g. corp.example.com
	NetBIOSName       string   `yaml:"netbios_name"` // e.g. CORP
	BaseDN            string   `yaml:"base_dn"`      // derived from name when empty
	DomainControllers []string `yaml:"domain_controllers"`
	GlobalCatalogs    []string `yaml:"global_catalogs"`
	TLS               LDAPTLS  `yaml:"tls"`
	Bind              Bind     `yaml:"bind"`
	Timeout           Duration `yaml:"timeout"`
	// NTP asks each DC for SNTP time as well as the rootDSE currentTime.
	NTP *bool `yaml:"ntp"`
	// NTPPort is the DCs' SNTP port (123 unless a test world says otherwise).
	NTPPort int `yaml:"ntp_port"`
	// MaxDuplicateSPNs bounds how many duplicated SPNs are exported by name.
	MaxDuplicateSPNs int `yaml:"max_duplicate_spns"`
}

// LDAPTLS configures LDAPS and StartTLS. Verification is on unless
// insecure_skip_verify says otherwise, explicitly.
type LDAPTLS struct {
	StartTLS           bool   `yaml:"start_tls"`
	CAFile             string `yaml:"ca_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Bind says how the exporter authenticates to LDAP.
type Bind struct {
	Method   string  `yaml:"method"` // simple | gssapi
	Username string  `yaml:"username"`
	Password *Secret `yaml:"password"`
	// AllowInsecureBind lets a simple bind send its password in clear text
	// over ldap:// without StartTLS. Refused unless set.
	AllowInsecureBind bool `yaml:"allow_insecure_bind"`
}

// SQLInstance is one SQL Server instance to watch.
type SQLInstance struct {
	Name                   string             `yaml:"name"`
	Host                   string             `yaml:"host"` // FQDN, used for SPNs and DNS
	NetBIOSName            string             `yaml:"netbios_name"`
	Address                string             `yaml:"address"` // where to dial, when not Host
	Port                   int                `yaml:"port"`
	InstanceName           string             `yaml:"instance_name"`
	AGListener             string             `yaml:"ag_listener"`
	AGListenerPort         int                `yaml:"ag_listener_port"`
	Domain                 string             `yaml:"domain"`
	ServiceAccount         string             `yaml:"service_account"`
	ExpectKerberos         *bool              `yaml:"expect_kerberos"`
	Auth                   SQLAuth            `yaml:"auth"`
	Encrypt                string             `yaml:"encrypt"` // disable | false | true | strict
	TrustServerCertificate bool               `yaml:"trust_server_certificate"`
	Timeout                Duration           `yaml:"timeout"`
	NTLMClientsTop         int                `yaml:"ntlm_clients_top"`
	LinkedServers          LinkedServerChecks `yaml:"linked_servers"`

	// Discovered is set on the instances discovery added.
	Discovered bool `yaml:"-"`
}

// SQLAuth is how the exporter logs in to an instance.
type SQLAuth struct {
	Method     string  `yaml:"method"` // sql | ntlm | kerberos | windows
	Username   string  `yaml:"username"`
	Password   *Secret `yaml:"password"`
	KeytabFile string  `yaml:"keytab_file"`
	CCacheFile string  `yaml:"ccache_file"`
	Krb5Config string  `yaml:"krb5_config"`
	Realm      string  `yaml:"realm"`
	ServerSPN  string  `yaml:"server_spn"`
	// NTLMFallback mimics Windows' Negotiate: when no Kerberos ticket can be
	// had for the server's SPN, log in with NTLM, so that the measurement
	// shows what a Windows client would get.
	NTLMFallback bool `yaml:"ntlm_fallback"`
}

// Discovery finds SQL Servers in the directory from their MSSQLSvc/ SPNs.
// A discovered instance is named HOST (port 1433), HOST:PORT or
// HOST:INSTANCE, watched with the template's connection settings, and
// dropped when a configured instance already watches the same name, host
// and port, or host and instance name (the configuration wins).
type Discovery struct {
	// BaseDNs are where to search, each under a configured domain's base
	// DN; empty means every configured domain's base DN.
	BaseDNs []string `yaml:"base_dns"`
	// Include and Exclude are shell patterns (*, ?, [a-z]) matched, ignoring
	// case, against the discovered name: an instance is kept when it matches
	// some include (or include is empty) and no exclude.
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
	// RefreshInterval is how often the directory is searched again; the
	// cycles in between reuse the last answer.
	RefreshInterval Duration `yaml:"refresh_interval"`
	// Template holds the connection settings of every discovered instance.
	Template SQLTemplate `yaml:"template"`
}

// SQLTemplate is the part of an SQLInstance that discovery cannot know.
type SQLTemplate struct {
	Auth                   SQLAuth            `yaml:"auth"`
	Encrypt                string             `yaml:"encrypt"`
	TrustServerCertificate bool               `yaml:"trust_server_certificate"`
	Timeout                Duration           `yaml:"timeout"`
	ExpectKerberos         *bool              `yaml:"expect_kerberos"`
	NTLMClientsTop         int                `yaml:"ntlm_clients_top"`
	LinkedServers          LinkedServerChecks `yaml:"linked_servers"`
}

// LinkedServerChecks bounds what the exporter does through linked servers.
type LinkedServerChecks struct {
	// Test lists the linked servers to run sp_testlinkedserver and the hop
	// query against; "*" means all self-mapped ones.
	Test    []string `yaml:"test"`
	Timeout Duration `yaml:"timeout"`
}

// Service is a non-SQL service whose SPNs must exist on a given account,
// e.g. an HTTP front end behind a load balancer.
type Service struct {
	Name    string   `yaml:"name"`
	Account string   `yaml:"account"`
	SPNs    []string `yaml:"spns"`
	Hosts   []string `yaml:"hosts"`
}

// DelegatedPrincipals are the users and groups whose identity must flow over
// the second hop; they must not be sensitive nor in Protected Users.
type DelegatedPrincipals struct {
	Users  []string `yaml:"users"`
	Groups []string `yaml:"groups"`
}

// DNS configures forward and reverse lookups of the SQL hosts.
type DNS struct {
	// Servers are host:port of DNS servers to ask; empty means the system resolver.
	Servers []string `yaml:"servers"`
	Timeout Duration `yaml:"timeout"`
}

// Thresholds are where judgement turns a fact into a warning or a critical finding.
type Thresholds struct {
	ClockSkewWarning  Duration `yaml:"clock_skew_warning"`
	ClockSkewCritical Duration `yaml:"clock_skew_critical"`
}

// Defaults applied after parsing.
const (
	DefaultCollectionInterval  = 60 * time.Second
	DefaultCollectorTimeout    = 30 * time.Second
	DefaultSPNScanInterval     = 5 * time.Minute
	DefaultSPNFullScanInterval = time.Hour
	DefaultLDAPTimeout         = 10 * time.Second
	DefaultSQLTimeout          = 10 * time.Second
	DefaultDNSTimeout          = 5 * time.Second
	DefaultNTLMClientsTop      = 10
	DefaultMaxDuplicateSPNs    = 50
	DefaultSkewWarning         = 60 * time.Second
	DefaultSkewCritical        = 240 * time.Second
	// DefaultMaxConcurrentInstances keeps a cycle's SQL logins and queries
	// to a burst a SQL fleet and the exporter's host absorb easily.
	DefaultMaxConcurrentInstances = 32
	// MaxConcurrentInstancesLimit is the most max_concurrent_instances may
	// say: each instance in flight holds a connection and a goroutine set.
	MaxConcurrentInstancesLimit = 1024
	// DefaultDNSConcurrency and DefaultKDCConcurrency keep a cycle's DNS
	// queries and ticket requests to a load one DNS server or DC absorbs
	// without notice; ConcurrencyLimit bounds both settings.
	DefaultDNSConcurrency = 8
	DefaultKDCConcurrency = 4
	ConcurrencyLimit      = 256
	// DefaultLookupCacheTTL is how long DNS answers and ticket-request
	// outcomes are reused; MaxLookupCacheTTL bounds the settings.
	DefaultLookupCacheTTL = 5 * time.Minute
	MaxLookupCacheTTL     = 24 * time.Hour
	// FailedLookupTTL is the longest a failed lookup is reused: with the
	// default interval a repair shows at the next cycle.
	FailedLookupTTL = 30 * time.Second
	// DefaultDiscoveryRefresh is how often discovery searches the directory.
	DefaultDiscoveryRefresh = 10 * time.Minute
)
