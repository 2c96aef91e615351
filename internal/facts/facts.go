// Package facts is the boundary between collection and judgement.
//
// Collectors fill a Snapshot with what they saw in AD, the KDC, DNS and SQL
// Server: no thresholds, no severities, no advice. Some facts are matches the
// collectors compute because only they hold the raw attributes, such as
// DelegationPath (is the back end's SPN listed in msDS-AllowedToDelegateTo,
// is the front end's SID in the back end's RBCD descriptor), and the
// delegation collector's kerberos_delegation_path_ok metric says whether any
// mechanism matched. The diagnosis package reads a Snapshot and decides what
// is wrong, how badly, and what fixes it. Each
// collector writes only its own section, so collectors can run concurrently
// without locks.
package facts

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Snapshot is everything one collection cycle learned.
type Snapshot struct {
	Started  time.Time
	Finished time.Time

	// Written by the cycle once an instance's SQL facts are in
	// (collector.Targets); read by the spn, delegation and kdc collectors
	// and by the diagnosis. SQL instances in configuration order, then
	// services.
	Targets []Target
	// Written by the "sql" collector.
	SQL map[string]*SQLInstance
	// Written by the "linkedserver" collector, keyed by SQL instance name.
	LinkedServers map[string]*LinkedServers
	// Written by the "errorlog" collector, keyed by SQL instance name.
	ErrorLogs map[string]*ErrorLog
	// Written by the "clock" collector.
	DCs []DomainController
	// Written by the "dns" collector.
	DNS []HostDNS
	// Written by the "users" collector.
	Users []DelegatedPrincipal
	// Written by the "spn" collector.
	SPNs       []ExpectedSPN
	Duplicates *DuplicateSPNs
	// Written by the "delegation" collector.
	Accounts        []Account
	DelegationPaths []DelegationPath
	// Written by the "kdc" collector.
	Tickets []TicketProbe
	// Written by the "aeskeys" collector.
	AESDomains  []DomainAES
	AccountKeys []AccountKeys
	// Written by the "cname" collector.
	CanonicalSPNs []CanonicalSPN
}

// New returns an empty snapshot with its maps made.
func New(started time.Time) *Snapshot {
	return &Snapshot{
		Started:       started,
		SQL:           map[string]*SQLInstance{},
		LinkedServers: map[string]*LinkedServers{},
		ErrorLogs:     map[string]*ErrorLog{},
	}
}

// Target is something whose SPNs must exist on a known account: a SQL
// Server instance or a configured service, as the configuration and the
// instance's own SQL facts say.
type Target struct {
	Name string // the instance or service name, the metric label "target"
	// SQL is true for a SQL Server instance, false for a configured service.
	SQL  bool
	SPNs []string
	// HostNetBIOS is a SQL instance's host NetBIOS name (spn.HostNetBIOS).
	HostNetBIOS string
	// Domain is the name of the configured domain the account lives in; ""
	// when no configured domain matches the account's domain.
	Domain string
	// Account is the account that must hold the SPNs, as DOMAIN\sam, and SAM
	// its sAMAccountName; both "" when unknown.
	Account string
	SAM     string
	// AccountSource says where the account came from: "config" (service_account
	// or a service's account), "sql" (the Database Engine's account as the
	// server reported it) or "" when unknown.
	AccountSource string
	// AccountProblem says why a named account has no directory identity,
	// e.g. LOCAL SERVICE, which cannot use Kerberos at all.
	AccountProblem string
}

// ExporterProgram is the program_name the exporter's own SQL sessions show,
// so that judgement can tell them from the clients it watches.
const ExporterProgram = "kerberos_exporter"

// ---- SQL Server ----

// SQLInstance is what one instance said about itself and its connections.
type SQLInstance struct {
	Name string // the configured instance name (metric label)
	Up   bool
	// ConnectError is why the exporter could not log in; Cause classifies it.
	ConnectError string
	Cause        string // login_failed | network | timeout | tls | kerberos | other
	ErrorNumber  int32  // SQL Server error number, e.g. 18456

	// The exporter's own session.
	AuthScheme   string // KERBEROS | NTLM | SQL
	NetTransport string // TCP | Named pipe | Shared memory
	LocalTCPPort int
	// UsedNTLMFallback is true when the Kerberos login could not get a ticket
	// and the exporter logged in with NTLM, as a Windows client would.
	UsedNTLMFallback bool
	// KerberosError is the ticket error that caused the fallback, and
	// KerberosErrorCode the KDC's KRB-ERROR code in it (0 when none).
	KerberosError     string
	KerberosErrorCode int32
	// ExpectKerberos is the configuration's expectation for this instance.
	ExpectKerberos bool

	// Local is true when the exporter runs on the SQL host itself: local
	// connections are always NTLM, so the auth-scheme measurement is void.
	Local bool

	MachineName     string
	PhysicalNetBIOS string
	InstanceName    string // "" for a default instance
	DomainName      string
	ListenerPorts   []int
	ServiceAccounts []ServiceAccount
	// EngineAccount is the account of the Database Engine service (the one
	// whose SPNs matter), "" when it could not be read.
	EngineAccount string

	// ClockSkew is server time minus exporter time, corrected by half the
	// round trip. ClockMeasured says whether it was measured.
	ClockSkew     time.Duration
	ClockMeasured bool

	Connections []ConnectionCount
	NTLMClients []NTLMClient
	// PermissionErrors lists queries that failed for lack of a grant.
	PermissionErrors []string
	// QueryErrors lists queries that failed for another reason ("query: error").
	QueryErrors []string
}

// ServiceAccount is one row of sys.dm_server_services.
type ServiceAccount struct {
	ServiceName string
	Account     string
}

// ConnectionCount is connections by transport and auth scheme.
type ConnectionCount struct {
	NetTransport string
	AuthScheme   string
	Count        int
}

// NTLMClient is a client reaching the server over TCP with NTLM.
type NTLMClient struct {
	Host, Login, Program string
	Connections          int
}

// LinkedServers is the linked-server view of one instance.
type LinkedServers struct {
	Instance string
	Readable bool
	Error    string
	// PermissionDenied: the linked-server catalog could not be read for lack of a grant.
	PermissionDenied bool
	Servers          []LinkedServer
}

// LinkedServer is one linked server, its login mappings and, when tested,
// the result of sp_testlinkedserver and of the hop query.
type LinkedServer struct {
	Name       string
	Product    string
	Provider   string
	DataSource string
	// TargetInstance is the configured SQL instance the data source points at, if any.
	TargetInstance string
	// SelfMapped: some login (or all) uses its own credentials (uses_self_credential = 1).
	SelfMapped bool
	// FixedLogin: some mapping uses a fixed remote login (no delegation needed).
	FixedLogin bool

	Tested    bool
	TestOK    bool
	ErrNumber int32
	ErrState  uint8
	ErrMsg    string
	// Cause classifies a failed test: delegation | login_failed | network | timeout | no_mapping | other.
	Cause string

	HopTested     bool
	HopOK         bool
	HopError      string
	HopAuthScheme string
	HopTransport  string
	// HopClockSkew is the linked server's clock minus this instance's clock.
	HopClockSkew time.Duration
}

// ErrorLog holds SPN registration messages from the last start-up.
type ErrorLog struct {
	Instance string
	// Readable is false when the exporter lacks permission: then registration
	// is unknown, never "failed".
	Readable bool
	Error    string
	// PermissionDenied: Readable is false for lack of a grant (not another error).
	PermissionDenied bool
	Registrations    []SPNRegistration
}

// SPNRegistration is a 26059 (registered) or 26067 (could not register) line.
type SPNRegistration struct {
	Time       time.Time
	SPN        string
	Registered bool
	ReturnCode string // e.g. 0x2098 (insufficient access rights)
	State      int
}

// ---- Active Directory ----

// DomainController is one DC's reachability and clock.
type DomainController struct {
	Domain  string
	Address string // the URL host, e.g. dc1.corp.example.com
	Up      bool
	Error   string
	// LDAPSkew is DC time minus exporter time from rootDSE currentTime (one
	// second resolution), corrected by half the round trip.
	LDAPSkew     time.Duration
	LDAPMeasured bool
	NTPSkew      time.Duration
	NTPMeasured  bool
	NTPError     string
	// Skipped says why the DC was not measured this cycle (the collector
	// ran out of time first); Up is then unknown, not false.
	Skipped string
}

// ExpectedSPN is an SPN that must exist, and what the directory says of it.
type ExpectedSPN struct {
	Target string // SQL instance or service name
	SPN    string
	// ExpectedAccount is the account that must hold it (DOMAIN\sam), "" when unknown.
	ExpectedAccount string
	// Holders are the accounts that hold it (DOMAIN\sam), forest-wide.
	Holders []string
	// LookupError is set when the directory could not be asked.
	LookupError string
}

// DuplicateSPNs is the forest-wide duplicate scan.
type DuplicateSPNs struct {
	Scanned bool
	Error   string
	// Total is the number of SPNs held by more than one account.
	Total int
	// Top lists up to the configured number of them, with their holders.
	Top []DuplicateSPN
	// AccountsScanned is how many accounts with SPNs were read.
	AccountsScanned int
	// ScanDuration is how long the last scan took; LastSuccess is when a
	// scan last ended without error (zero: never).
	ScanDuration time.Duration
	LastSuccess  time.Time
	// Scans counts the scans of a scope made so far, by mode: "full" or
	// "incremental".
	Scans map[string]int
}

// DuplicateSPN is one SPN held by more than one account.
type DuplicateSPN struct {
	SPN      string
	Accounts []string
}

// Account is a service account (or computer account acting for a service).
type Account struct {
	Name  string // DOMAIN\sam, the metric label
	Kind  string // user | computer | managed | virtual | local | unknown
	Found bool
	DN    string
	// SID is the account's objectSid (S-1-5-21-…), "" when not read. It
	// names an entry of another account's RBCDAllowed that the directory
	// could not name (an account of another domain).
	SID string
	// LookupError is set when the directory could not be asked.
	LookupError string

	UserAccountControl   uint32
	Disabled             bool
	Locked               bool
	TrustedForDelegation bool // unconstrained, UAC 0x80000
	ProtocolTransition   bool // UAC 0x1000000 (TRUSTED_TO_AUTH_FOR_DELEGATION)
	AllowedToDelegateTo  []string
	// RBCDAllowed are accounts allowed to delegate TO this one
	// (msDS-AllowedToActOnBehalfOfOtherIdentity, resolved from SIDs in
	// this account's domain): DOMAIN\sam, or the SID string (S-1-…) of
	// one it could not name (another domain's account, or a deleted one).
	RBCDAllowed []string
	RBCDRead    bool // false when the attribute could not be read
	// SupportedEncTypes is msDS-SupportedEncryptionTypes (0 when unset).
	SupportedEncTypes uint32
	SPNs              []string
}

// DelegationPath is a front-end service account that must delegate to a
// back-end's SPNs (a self-mapped linked server from A to B).
type DelegationPath struct {
	FromInstance  string
	LinkedServer  string
	ToTarget      string // configured instance or data source host
	FromAccount   string
	ToAccount     string
	TargetSPNs    []string
	Unconstrained bool
	// ConstrainedListed: msDS-AllowedToDelegateTo of FromAccount lists one of TargetSPNs.
	ConstrainedListed  bool
	ProtocolTransition bool
	// RBCD: ToAccount's msDS-AllowedToActOnBehalfOfOtherIdentity allows FromAccount.
	RBCD bool
	// Known is false when one of the accounts could not be read.
	Known bool
}

// DelegatedPrincipal is a user or group whose identity must flow over a hop.
type DelegatedPrincipal struct {
	Name           string // DOMAIN\sam
	Group          bool
	Found          bool
	LookupError    string
	Sensitive      bool // "account is sensitive and cannot be delegated", UAC 0x100000
	ProtectedUsers bool // member of Protected Users (directly or nested)
	Disabled       bool
	Locked         bool
}

// ---- KDC ----

// TicketProbe is one service-ticket request the exporter made with its own credentials.
type TicketProbe struct {
	Target string
	SPN    string
	Realm  string
	OK     bool
	// ErrorCode is the KRB-ERROR code (7 principal unknown, 37 clock skew, …); 0 when none.
	ErrorCode int32
	ErrorName string
	Error     string
	// TicketEType is the encryption type of the service ticket (chosen by
	// the KDC from the service account's keys) and SessionKeyEType that of
	// the session key, e.g. aes256-cts-hmac-sha1-96 or rc4-hmac; "" unless OK.
	TicketEType     string
	SessionKeyEType string
	// Skipped says why no ticket was asked for this cycle (the collector
	// ran out of time before the KDC answered); the outcome is then
	// unknown, never a failure.
	Skipped string
}

// ---- AES keys (RC4 enforcement readiness) ----

// DomainAES is when a domain became able to make AES keys, and its krbtgt.
type DomainAES struct {
	Domain string // configured DNS name
	// AESSince is the creation time of the domain's Read-only Domain
	// Controllers group (RID 521), made when the domain reached the 2008
	// functional level: passwords set before it have no AES keys. Zero when
	// unknown (Error says why).
	AESSince time.Time
	// Born is the creation time of the domain itself (its naming context).
	Born time.Time
	// FunctionalLevel is the domain functional level (msDS-Behavior-Version
	// of the domain head: 2 is Windows Server 2003, 3 is 2008);
	// FunctionalLevelKnown whether it was read.
	FunctionalLevel      int
	FunctionalLevelKnown bool
	Error                string
	// Krbtgt is the domain's krbtgt account.
	Krbtgt AccountKeys
}

// bornAESTolerance: a domain whose Read-only Domain Controllers group was
// created within this time of the domain itself was created at the 2008
// functional level or higher, so every password ever set in it made AES
// keys, even those set seconds before the group (krbtgt's, at promotion).
const bornAESTolerance = time.Hour

// dfl2008 is msDS-Behavior-Version of the Windows Server 2008 domain
// functional level (DS_BEHAVIOR_WIN2008). DCs make AES keys for a password
// only while the domain is at this level or higher, whatever OS they run:
// [MS-SAMR] 3.1.1.8.11.6, "Primary:Kerberos-Newer-Keys" (the AES keys) is
// written on a password update only "when the current domain functional
// level is DS_BEHAVIOR_WIN2008 or greater".
const dfl2008 = 3

// BelowAESLevel says the domain is known to be below the 2008 functional
// level: no password set in it so far has made AES keys.
func (d DomainAES) BelowAESLevel() bool {
	return d.FunctionalLevelKnown && d.FunctionalLevel < dfl2008
}

// AESKeysPossible says whether a password last set at pwdLastSet made AES
// keys in this domain; known is false when that cannot be told (the
// domain's marker or the password time is unknown), and then nothing may be
// concluded from it.
func (d DomainAES) AESKeysPossible(pwdLastSet time.Time) (possible, known bool) {
	if d.BelowAESLevel() {
		// Still below the 2008 level: no AES keys yet, whenever the
		// password was set (even if a 2008 DC made the RID 521 group).
		return false, true
	}
	// At 2008 or higher without a RID 521 group (deleted, or not readable),
	// or with an unknown level: nothing dates the raise to the 2008 level,
	// so a password time cannot be placed before or after it.
	if d.AESSince.IsZero() || pwdLastSet.IsZero() {
		return false, false
	}
	since := d.AESSince
	if !d.Born.IsZero() && d.AESSince.Sub(d.Born) < bornAESTolerance {
		since = d.Born
	}
	// whenCreated has whole seconds: a password set in the same second
	// counts as after.
	return !pwdLastSet.Before(since.Truncate(time.Second)), true
}

// AccountKeys is what the directory says about an account's keys.
type AccountKeys struct {
	Name   string // DOMAIN\sam
	Domain string // configured DNS name
	Found  bool
	// PwdLastSet is when the password (and so the keys) was last set; zero
	// when never set or unknown.
	PwdLastSet time.Time
	// SupportedEncTypes is msDS-SupportedEncryptionTypes, SupportedEncTypesSet
	// whether the attribute is there at all.
	SupportedEncTypes    uint32
	SupportedEncTypesSet bool
	Error                string
}

// ---- Names clients resolve differently ----

// CanonicalSPN is the SPN a Windows client really asks for when the host in
// an expected SPN is a DNS alias (CNAME): the SPN with the canonical host.
type CanonicalSPN struct {
	Target string
	// SPN is the expected (configured or derived) SPN, with the alias.
	SPN string
	// Alias is its host, CanonicalHost what the alias resolves to.
	Alias, CanonicalHost string
	// Requested is the SPN with the canonical host.
	Requested string
	// ExpectedAccount is the account that must hold it, "" when unknown.
	ExpectedAccount string
	Holders         []string
	LookupError     string
}

// ---- DNS ----

// HostDNS is the forward and reverse view of one host name.
type HostDNS struct {
	Host         string
	Addresses    []string
	ForwardError string
	// NotFound: a DNS server said the name does not exist (not a timeout).
	NotFound bool
	// PTR maps each address to the names its reverse lookup returned.
	PTR          map[string][]string
	ReverseError string
	// ReverseMatches: every address's PTR names Host.
	ReverseMatches bool
	// CanonicalName is the name Host resolves to after following CNAME
	// records (Host itself when it has an A record); "" when unknown.
	CanonicalName string
	CNAMEError    string
	// Skipped says why the host was not checked this cycle (the collector
	// ran out of time before or during its lookups); every other field is
	// then unknown, never a failure.
	Skipped string
}

// IsCNAME says whether the host is an alias of another name; known says
// whether the canonical name was learnt.
func (h HostDNS) IsCNAME() (alias, known bool) {
	if h.CanonicalName == "" {
		return false, false
	}
	return !sameDNSName(h.CanonicalName, h.Host), true
}

// NameBehind is the canonical name when known, else Host: the name a
// client that follows CNAMEs builds the SPN from, and the one the addresses'
// PTR records should name.
func (h HostDNS) NameBehind() string {
	if h.CanonicalName != "" {
		return h.CanonicalName
	}
	return h.Host
}

func sameDNSName(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

// Why a check was skipped (the Skipped fields).
const (
	// SkippedDeadline: the collector's timeout ended before the check had
	// its answer.
	SkippedDeadline = "deadline"
	// SkippedCanceled: the cycle was stopped (shutdown, reload).
	SkippedCanceled = "canceled"
)

// SkipReason is why a check cut by ctx's end (err is ctx.Err()) was skipped.
func SkipReason(err error) string {
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		// nil: the deadline has passed, the context's timer not yet fired.
		return SkippedDeadline
	}
	return SkippedCanceled
}
