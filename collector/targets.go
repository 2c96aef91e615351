package collector

import (
	"fmt"
	"strings"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/spn"
)

// Target is something whose SPNs must exist on a known account.
type Target = facts.Target

// Targets lists everything whose SPNs must exist, SQL instances in
// configuration order, then services. A SQL instance's SPNs come from its
// configuration (host, NetBIOS name, port, instance name, AG listener) and
// from what the instance said about itself in snap (every TCP port it
// listens on, including a dynamic one, and its instance name). Its account is
// the configured service_account, else the Database Engine's account; a
// virtual account, LocalSystem or NetworkService means the computer account.
//
// The cycle calls it once per directory run, after the SQL facts are in,
// and stores the result in snap.Targets for the collectors and the
// diagnosis.
func Targets(cfg *config.Config, snap *facts.Snapshot) []Target {
	var out []Target
	for i := range cfg.SQLInstances {
		out = append(out, sqlTarget(cfg, &cfg.SQLInstances[i], snap))
	}
	for _, svc := range cfg.Services {
		t := Target{Name: svc.Name, SPNs: dedupeSPNs(svc.SPNs)}
		setAccount(&t, cfg, svc.Account, "config", defaultDomain(cfg, ""), "")
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
	host := hostNetBIOS(inst, seen)
	t := Target{Name: inst.Name, SQL: true, SPNs: dedupeSPNs(spns), HostNetBIOS: host}
	switch {
	case inst.ServiceAccount != "":
		setAccount(&t, cfg, inst.ServiceAccount, "config", defaultDomain(cfg, inst.Domain), host)
	case seen != nil && seen.EngineAccount != "":
		setAccount(&t, cfg, seen.EngineAccount, "sql", defaultDomain(cfg, inst.Domain), host)
	}
	return t
}

// setAccount normalises a service account name to the directory account
// that holds its SPNs.
func setAccount(t *Target, cfg *config.Config, raw, source string, def *config.Domain, host string) {
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
	home := def
	domain := defName
	if acct.Kind == spn.DomainUser || acct.Kind == spn.ManagedOrComputer {
		home, domain = findDomain(cfg, acct.Domain), acct.Domain
		if home != nil {
			domain = netbiosName(home)
		}
	}
	if home != nil {
		t.Domain = home.Name
	}
	if domain == "" {
		t.AccountProblem = fmt.Sprintf("the domain of %s is not known: configure the domain", acct)
		return
	}
	t.Account, t.SAM, t.AccountSource = domain+`\`+sam, sam, source
}

// expectedTargets are the targets of this run: the cycle's (snap.Targets),
// or, for a snapshot the cycle did not make (a collector's own test),
// computed now.
func expectedTargets(env *Env, snap *facts.Snapshot) []Target {
	if snap.Targets != nil {
		return snap.Targets
	}
	return Targets(env.Config, snap)
}

// targetDomain is the configured domain a target's account lives in, nil
// when none matches.
func targetDomain(cfg *config.Config, t *Target) *config.Domain {
	if t.Domain == "" {
		return nil
	}
	return cfg.FindDomain(t.Domain)
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
