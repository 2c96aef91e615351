package spn

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// Kind classifies a service account by what it means for Kerberos.
type Kind int

// Account kinds. The zero Kind is not a valid account.
const (
	// DomainUser is an ordinary domain user: SPNs and delegation settings
	// live on its own AD object.
	DomainUser Kind = iota + 1
	// ManagedOrComputer is a name ending in '$': a (group) managed service
	// account or a computer account.
	ManagedOrComputer
	// Virtual is an NT SERVICE\ virtual account, e.g. NT SERVICE\MSSQLSERVER;
	// on the network it acts as the computer account.
	Virtual
	// LocalSystem acts as the computer account on the network.
	LocalSystem
	// NetworkService acts as the computer account on the network.
	NetworkService
	// LocalService has no network identity: it authenticates anonymously,
	// so Kerberos to a service running as it cannot work.
	LocalService
	// Local is an account of the machine's own SAM database: the domain's
	// KDC does not know it, so no Kerberos.
	Local
)

var kindNames = map[Kind]string{
	DomainUser:        "domain_user",
	ManagedOrComputer: "managed_or_computer",
	Virtual:           "virtual",
	LocalSystem:       "local_system",
	NetworkService:    "network_service",
	LocalService:      "local_service",
	Local:             "local",
}

// String returns a lower-case name suitable as a metric label value.
func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return "unknown"
}

const (
	ntAuthority = "NT AUTHORITY"
	ntService   = "NT SERVICE"
	localDomain = "."
)

// Account is a normalised service account name.
type Account struct {
	Kind Kind
	// Domain is upper-case: a NetBIOS or DNS domain name, "NT AUTHORITY",
	// "NT SERVICE", "." for a local account on an unnamed host, or the host
	// name after OnHost.
	Domain string
	// SAMAccountName is the account name as given, including a trailing '$'.
	// For a UPN it is the part before '@', which is usually but not always the
	// real sAMAccountName: search the directory by UPN when it matters.
	SAMAccountName string
	// UPN is the user principal name when the account was given in that form.
	UPN string
}

// String returns the canonical DOMAIN\sam form, used as a metric label.
func (a Account) String() string {
	if a.Kind == 0 {
		return ""
	}
	return a.Domain + `\` + a.SAMAccountName
}

var errEmptyAccount = errors.New("spn: empty account name")

// ParseAccount normalises a service account name as SQL Server, the service
// control manager or a person writes it: DOMAIN\user, user@dns.domain,
// name$ or DOMAIN\name$, LocalSystem, NT AUTHORITY\SYSTEM, NetworkService,
// NT AUTHORITY\NETWORK SERVICE, NT AUTHORITY\LOCAL SERVICE,
// NT SERVICE\MSSQLSERVER, NT SERVICE\MSSQL$INST and .\user. Case and
// surrounding space are ignored. A bare name takes defaultDomain.
//
// HOSTNAME\user cannot be told from DOMAIN\user without knowing the host:
// see OnHost.
func ParseAccount(raw, defaultDomain string) (Account, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return Account{}, errEmptyAccount
	}
	fail := func(format string, args ...any) (Account, error) {
		return Account{}, fmt.Errorf("spn: account %q: %s", raw, fmt.Sprintf(format, args...))
	}

	if domain, name, ok := strings.Cut(s, `\`); ok {
		domain, name = strings.TrimSpace(domain), strings.TrimSpace(name)
		switch {
		case strings.Contains(name, `\`):
			return fail(`more than one '\'`)
		case domain == "":
			return fail(`empty domain before '\'`)
		case name == "":
			return fail(`empty name after '\'`)
		}
		switch upper := strings.ToUpper(collapseSpaces(domain)); upper {
		case ntAuthority:
			if a, ok := builtinAccount(name); ok {
				return a, nil
			}
			return fail("not a service account of NT AUTHORITY")
		case ntService:
			if err := checkName(name); err != nil {
				return fail("%v", err)
			}
			return Account{Kind: Virtual, Domain: ntService, SAMAccountName: name}, nil
		case localDomain:
			if a, ok := builtinAccount(name); ok {
				return a, nil // the service control manager shows ".\LocalSystem"
			}
			if err := checkName(name); err != nil {
				return fail("%v", err)
			}
			return Account{Kind: Local, Domain: localDomain, SAMAccountName: name}, nil
		default:
			return domainAccount(raw, upper, name, "")
		}
	}

	if name, domain, ok := strings.Cut(s, "@"); ok {
		name, domain = strings.TrimSpace(name), strings.TrimSpace(domain)
		switch {
		case strings.Contains(domain, "@"):
			return fail("more than one '@'")
		case name == "":
			return fail("empty name before '@'")
		case domain == "":
			return fail("empty domain after '@'")
		}
		return domainAccount(raw, strings.ToUpper(domain), name, name+"@"+domain)
	}

	if a, ok := builtinAccount(s); ok {
		return a, nil
	}
	domain := strings.TrimSpace(defaultDomain)
	if domain == "" {
		return fail("no domain given and no default domain")
	}
	return domainAccount(raw, strings.ToUpper(domain), s, "")
}

// domainAccount builds a DomainUser or ManagedOrComputer account.
func domainAccount(raw, domain, name, upn string) (Account, error) {
	if err := checkDomain(domain); err != nil {
		return Account{}, fmt.Errorf("spn: account %q: %w", raw, err)
	}
	if err := checkName(name); err != nil {
		return Account{}, fmt.Errorf("spn: account %q: %w", raw, err)
	}
	kind := DomainUser
	if strings.HasSuffix(name, "$") {
		if name == "$" {
			return Account{}, fmt.Errorf("spn: account %q: empty name before '$'", raw)
		}
		kind = ManagedOrComputer
	}
	return Account{Kind: kind, Domain: domain, SAMAccountName: name, UPN: upn}, nil
}

// builtinAccount recognises the built-in service identities by any of the
// names Windows tools print for them.
func builtinAccount(name string) (Account, bool) {
	switch strings.ToUpper(strings.Join(strings.Fields(name), "")) {
	case "SYSTEM", "LOCALSYSTEM":
		return Account{Kind: LocalSystem, Domain: ntAuthority, SAMAccountName: "SYSTEM"}, true
	case "NETWORKSERVICE":
		return Account{Kind: NetworkService, Domain: ntAuthority, SAMAccountName: "NETWORK SERVICE"}, true
	case "LOCALSERVICE":
		return Account{Kind: LocalService, Domain: ntAuthority, SAMAccountName: "LOCAL SERVICE"}, true
	}
	return Account{}, false
}

func collapseSpaces(s string) string { return strings.Join(strings.Fields(s), " ") }

// Characters AD does not allow in a sAMAccountName.
const invalidNameChars = `"/\[]:;|=,+*?<>@`

func checkName(name string) error {
	if i := strings.IndexAny(name, invalidNameChars); i >= 0 {
		return fmt.Errorf("name %q contains %q", name, name[i])
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return fmt.Errorf("name %q contains a control character", name)
	}
	return nil
}

// Characters neither NetBIOS nor DNS domain names allow.
const invalidDomainChars = `"/\:*?<>|@,;=+[]`

func checkDomain(domain string) error {
	if i := strings.IndexAny(domain, invalidDomainChars); i >= 0 {
		return fmt.Errorf("domain %q contains %q", domain, domain[i])
	}
	if strings.IndexFunc(domain, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
		return fmt.Errorf("domain %q contains whitespace or a control character", domain)
	}
	return nil
}

// OnHost reads the account in the context of the machine the service runs
// on: HOST\user, where HOST is that machine's NetBIOS name, is a local account
// (a computer cannot share its name with the domain, so there is no
// ambiguity), and .\user takes the host's name as its domain.
func (a Account) OnHost(hostNetBIOS string) Account {
	host := strings.ToUpper(strings.TrimSpace(hostNetBIOS))
	if host == "" {
		return a
	}
	switch a.Kind {
	case DomainUser, ManagedOrComputer:
		if a.Domain == host {
			a.Kind, a.UPN = Local, ""
		}
	case Local:
		if a.Domain == localDomain {
			a.Domain = host
		}
	}
	return a
}

// DirectoryIdentity returns the sAMAccountName of the AD account whose SPNs
// and delegation settings matter for a service running as a on the host
// hostNetBIOS. LocalSystem, NetworkService and virtual accounts use the
// computer account, HOST$. LocalService and local accounts have none
// (ok=false): Kerberos to the service cannot work.
func (a Account) DirectoryIdentity(hostNetBIOS string) (sam string, ok bool) {
	a = a.OnHost(hostNetBIOS)
	switch a.Kind {
	case DomainUser, ManagedOrComputer:
		return a.SAMAccountName, true
	case LocalSystem, NetworkService, Virtual:
		host := strings.ToUpper(strings.TrimSuffix(strings.TrimSpace(hostNetBIOS), "$"))
		if host == "" {
			return "", false
		}
		return host + "$", true
	}
	return "", false
}
