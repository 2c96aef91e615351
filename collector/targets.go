package collector

import (
	"fmt"
	"strings"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/spn"
)

// Target is something whose SPNs must exist on a known account: a SQL
// Server instance or a configured service.
type Target struct {
	Name string // the instance or service name, the metric label "target"
	// SQL is true for a SQL Server instance, false for a configured service.
	SQL  bool
	SPNs []string
	// Domain is the configured domain the account lives in; nil when no
	// configured domain matches the account's domain.
	Domain *config.Domain
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

// Targets lists everything whose SPNs must exist, SQL instances in
// configuration order, then services. A SQL instance's SPNs come from its
// configuration (host, NetBIOS name, port, instance name, AG listener) and
// from what the instance said about itself in snap (every TCP port it
// listens on, including a dynamic one, and its instance name). Its account is
// the configured service_account, else the Database Engine's account; a
// virtual account, LocalSystem or NetworkService means the computer account.
func Targets(cfg *config.Config, snap *facts.Snapshot) []Target {
	var out []Target
	for i := range cfg.SQLInstances {
		out = append(out, sqlTarget(cfg, &cfg.SQLInstances[i], snap))
	}
	for _, svc := range cfg.Services {
		t := Target{Name: svc.Name, SPNs: dedupeSPNs(svc.SPNs)}
		t.setAccount(cfg, svc.Account, "config", defaultDomain(cfg, ""), "")
		out = append(out, t)
	}
	return out
}

func sqlTarget(cfg *config.Config, inst *config.SQLInstance, snap *facts.Snapshot) Target {
	var seen *facts.SQLInstance
	if snap != nil {
		seen = snap.SQL[inst.Name]
	}
	instanceName := inst.InstanceName
	ports := []int{inst.Port}
	if seen != nil {
		if instanceName == "" {
			instanceName = seen.InstanceName
		}
		ports = append(ports, seen.ListenerPorts...)
	}
	var spns []string
	for _, port := range ports {
		spns = append(spns, spn.ExpectedSQLSPNs(spn.Instance{
			FQDN: inst.Host, NetBIOS: inst.NetBIOSName, Port: port, InstanceName: instanceName,
			AGListener: inst.AGListener, AGListenerPort: inst.AGListenerPort,
		})...)
	}
	t := Target{Name: inst.Name, SQL: true, SPNs: dedupeSPNs(spns)}
	host := hostNetBIOS(inst, seen)
	switch {
	case inst.ServiceAccount != "":
		t.setAccount(cfg, inst.ServiceAccount, "config", defaultDomain(cfg, inst.Domain), host)
	case seen != nil && seen.EngineAccount != "":
		t.setAccount(cfg, seen.EngineAccount, "sql", defaultDomain(cfg, inst.Domain), host)
	}
	return t
}

// setAccount normalises a service account name to the directory account
// that holds its SPNs.
func (t *Target) setAccount(cfg *config.Config, raw, source string, def *config.Domain, host string) {
	defName := ""
	if def != nil {
		defName = netbiosName(def)
	}
	acct, err := spn.ParseAccount(raw, defName)
	if err != nil {
		t.AccountProblem = err.Error()
		return
	}
	sam, ok := acct.DirectoryIdentity(host)
	if !ok {
		t.AccountProblem = fmt.Sprintf("%s has no account in the directory: Kerberos to a service running as it cannot work", acct)
		return
	}
	// LocalSystem, NetworkService and virtual accounts act as the computer
	// account, which lives in the instance's domain.
	t.Domain = def
	domain := defName
	if acct.Kind == spn.DomainUser || acct.Kind == spn.ManagedOrComputer {
		t.Domain, domain = findDomain(cfg, acct.Domain), acct.Domain
		if t.Domain != nil {
			domain = netbiosName(t.Domain)
		}
	}
	if domain == "" {
		t.AccountProblem = fmt.Sprintf("the domain of %s is not known: configure the domain", acct)
		return
	}
	t.Account, t.SAM, t.AccountSource = domain+`\`+sam, sam, source
}

// hostNetBIOS is the SQL host's NetBIOS name: configured, reported by the
// server, or the first label of its DNS name.
func hostNetBIOS(inst *config.SQLInstance, seen *facts.SQLInstance) string {
	if seen == nil {
		return spn.HostNetBIOS(inst.NetBIOSName, "", "", inst.Host)
	}
	return spn.HostNetBIOS(inst.NetBIOSName, seen.PhysicalNetBIOS, seen.MachineName, inst.Host)
}

// defaultDomain is the configured domain named name, or the first one.
func defaultDomain(cfg *config.Config, name string) *config.Domain {
	if d := findDomain(cfg, name); d != nil {
		return d
	}
	if len(cfg.Domains) > 0 {
		return &cfg.Domains[0]
	}
	return nil
}

// findDomain finds a configured domain by its DNS or NetBIOS name.
func findDomain(cfg *config.Config, name string) *config.Domain { return cfg.FindDomain(name) }

// netbiosName is the domain's NetBIOS name (configured, else its first label).
func netbiosName(d *config.Domain) string { return d.NetBIOS() }

// dedupeSPNs drops repeats (compared as AD does, ignoring case), keeping order.
func dedupeSPNs(spns []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range spns {
		if k := spn.Key(s); k != "" && !seen[k] {
			seen[k] = true
			out = append(out, strings.TrimSpace(s))
		}
	}
	return out
}
