package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/adsec"
	"github.com/kerberos-exporter/kerberos_exporter/internal/directory"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/spn"
	"github.com/kerberos-exporter/kerberos_exporter/internal/sqlclient"
	"github.com/kerberos-exporter/kerberos_exporter/internal/uac"
)

func init() {
	register("delegation", PhaseDirectory, true, func() Collector { return delegationCollector{} })
}

var (
	accountFoundDesc = newGauge(
		prometheus.BuildFQName(Namespace, "account", "found"),
		"Whether the service account exists in the directory (1) or not (0); absent when the directory could not be asked.",
		[]string{"account"})
	accountDisabledDesc = newGauge(
		prometheus.BuildFQName(Namespace, "account", "disabled"),
		"Whether the account is disabled (userAccountControl ACCOUNTDISABLE): the KDC issues no tickets for it.",
		[]string{"account"})
	accountLockedDesc = newGauge(
		prometheus.BuildFQName(Namespace, "account", "locked"),
		"Whether the account is locked out (msDS-User-Account-Control-Computed UF_LOCKOUT).",
		[]string{"account"})
	accountUnconstrainedDesc = newGauge(
		prometheus.BuildFQName(Namespace, "account", "unconstrained_delegation"),
		"Whether the account is trusted for delegation to any service (userAccountControl 0x80000).",
		[]string{"account"})
	accountProtocolTransitionDesc = newGauge(
		prometheus.BuildFQName(Namespace, "account", "protocol_transition"),
		"Whether the account is trusted to authenticate for delegation, i.e. constrained delegation with any protocol (userAccountControl 0x1000000).",
		[]string{"account"})
	accountConstrainedTargetsDesc = newGauge(
		prometheus.BuildFQName(Namespace, "account", "constrained_delegation_targets"),
		"Number of SPNs in the account's msDS-AllowedToDelegateTo.",
		[]string{"account"})
	accountRBCDPrincipalsDesc = newGauge(
		prometheus.BuildFQName(Namespace, "account", "rbcd_principals"),
		"Number of principals allowed to delegate to the account (msDS-AllowedToActOnBehalfOfOtherIdentity); absent when it could not be read.",
		[]string{"account"})
	accountEncTypesDesc = newGauge(
		prometheus.BuildFQName(Namespace, "account", "supported_encryption_types"),
		"The account's raw msDS-SupportedEncryptionTypes (0 when unset: the KDC's default applies).",
		[]string{"account"})
	accountAESDesc = newGauge(
		prometheus.BuildFQName(Namespace, "account", "aes_enabled"),
		"Whether msDS-SupportedEncryptionTypes allows AES128 or AES256 service tickets.",
		[]string{"account"})
	delegationPathDesc = newGauge(
		prometheus.BuildFQName(Namespace, "delegation", "path"),
		"Whether the mechanism lets the front end's service account delegate to the linked server's service; mechanism: unconstrained, constrained, rbcd. A mechanism that could not be read is absent unless another proves the path.",
		[]string{"sql_instance", "linked_server", "mechanism"})
	delegationPathOKDesc = newGauge(
		prometheus.BuildFQName(Namespace, "delegation", "path_ok"),
		"Whether any delegation mechanism lets the front end's service account delegate to the linked server's service; absent when unknown.",
		[]string{"sql_instance", "linked_server"})
)

// delegationCollector reads the service accounts' delegation settings and
// decides, for every self-mapped linked server, whether the front end's
// account may delegate to the back end's SPNs.
type delegationCollector struct{}

// accountRef names an account to read from a domain.
type accountRef struct {
	domain *config.Domain // nil: not in a configured domain
	sam    string
	name   string // DOMAIN\sam as the configuration or the server named it
}

func (r accountRef) key() string { return strings.ToUpper(r.name) }

// accountRead is one account's facts plus the SIDs the facts do not keep.
type accountRead struct {
	fact        facts.Account
	sid         adsec.SID
	rbcdAllowed []adsec.SID // allowed and not denied by the RBCD descriptor
}

// pathPlan is a self-mapped linked server from a configured instance and
// what its back end must be.
type pathPlan struct {
	fromInstance, linkedServer, toTarget string
	from                                 accountRef
	to                                   accountRef // zero when the back end's account is unknown yet
	toSPNs                               []string
}

func (delegationCollector) Update(ctx context.Context, env *Env, snap *facts.Snapshot) error {
	cfg := env.Config
	if len(cfg.Domains) == 0 {
		return nil
	}
	targets := expectedTargets(env, snap)
	plans := planPaths(cfg, snap, targets)
	var errs []error

	// Back ends that are not configured instances: their account is whoever
	// holds their SPN in the forest.
	if slices.ContainsFunc(plans, pathPlan.backEndUnknown) {
		if err := findBackEndAccounts(ctx, env, plans); err != nil {
			errs = append(errs, err)
		}
	}

	refs := map[string]accountRef{}
	var order []string
	want := func(r accountRef) {
		if r.sam != "" && refs[r.key()] == (accountRef{}) {
			refs[r.key()] = r
			order = append(order, r.key())
		}
	}
	for _, t := range targets {
		want(targetRef(cfg, &t))
	}
	for _, p := range plans {
		want(p.from)
		want(p.to)
	}
	reads, err := readAccounts(ctx, cfg, refs)
	if err != nil {
		errs = append(errs, err)
	}

	accounts := make([]facts.Account, 0, len(order))
	for _, k := range order {
		accounts = append(accounts, reads[k].fact)
	}
	slices.SortFunc(accounts, func(a, b facts.Account) int { return cmp.Compare(a.Name, b.Name) })
	snap.Accounts = accounts

	paths := make([]facts.DelegationPath, 0, len(plans))
	for _, p := range plans {
		paths = append(paths, judgePath(p, reads[p.from.key()], reads[p.to.key()]))
	}
	snap.DelegationPaths = paths
	return errors.Join(errs...)
}

// planPaths lists the self-mapped linked servers the linkedserver collector
// found, in instance and linked-server order, with the front end's account
// and the back end's SPNs and account. Nothing is invented without those
// facts.
func planPaths(cfg *config.Config, snap *facts.Snapshot, targets []Target) []pathPlan {
	byName := map[string]*Target{}
	for i := range targets {
		if targets[i].SQL {
			byName[targets[i].Name] = &targets[i]
		}
	}
	instances := make([]string, 0, len(snap.LinkedServers))
	for name := range snap.LinkedServers {
		instances = append(instances, name)
	}
	slices.Sort(instances)
	var plans []pathPlan
	for _, name := range instances {
		front := byName[name]
		if front == nil {
			continue
		}
		for _, ls := range snap.LinkedServers[name].Servers {
			if !ls.SelfMapped {
				continue
			}
			p := pathPlan{fromInstance: name, linkedServer: ls.Name, from: targetRef(cfg, front)}
			back := byName[ls.TargetInstance]
			ds := sqlclient.ParseDataSource(ls.DataSource)
			host, port, instance := ds.Host, ds.Port, ds.Instance
			if back == nil {
				// A snapshot not made by the linkedserver collector.
				back = byName[matchInstance(ds, cfg.SQLInstances)]
			}
			switch {
			case back != nil:
				p.toTarget, p.to, p.toSPNs = back.Name, targetRef(cfg, back), back.SPNs
			case host != "":
				if port == 0 && instance == "" {
					port = 1433
				}
				p.toTarget = host
				p.toSPNs = spn.ExpectedSQLSPNs(spn.Instance{FQDN: host, Port: port, InstanceName: instance})
			}
			plans = append(plans, p)
		}
	}
	return plans
}

// backEndUnknown says that the back end is not a configured instance and
// its account must be found from who holds its SPN.
func (p pathPlan) backEndUnknown() bool { return p.to.sam == "" && len(p.toSPNs) > 0 }

func targetRef(cfg *config.Config, t *Target) accountRef {
	return accountRef{domain: targetDomain(cfg, t), sam: t.SAM, name: t.Account}
}

// findBackEndAccounts asks the forest who holds the first SPN of each back
// end that is not a configured instance; a sole holder is its account.
func findBackEndAccounts(ctx context.Context, env *Env, plans []pathPlan) error {
	cfg := env.Config
	conn, err := directory.DialGlobalCatalog(ctx, cfg.Domains[0], &cfg.Kerberos, env.Logger)
	if err != nil {
		return err
	}
	defer conn.Close()
	var unknown []string
	for _, p := range plans {
		if p.backEndUnknown() {
			unknown = append(unknown, p.toSPNs[0])
		}
	}
	found, err := conn.FindHoldersOfSPNs(ctx, unknown)
	if err != nil {
		return err
	}
	for i := range plans {
		p := &plans[i]
		if !p.backEndUnknown() {
			continue
		}
		if holders := found[p.toSPNs[0]]; len(holders) == 1 {
			h := holders[0]
			p.to = accountRef{domain: domainOfDN(cfg, h.DN), sam: h.SAMAccountName, name: h.Name}
		}
	}
	return nil
}

// domainOfDN is the configured domain whose partition holds dn.
func domainOfDN(cfg *config.Config, dn string) *config.Domain {
	for i := range cfg.Domains {
		if base := cfg.Domains[i].BaseDN; base != "" && strings.HasSuffix(strings.ToUpper(dn), ","+strings.ToUpper(base)) {
			return &cfg.Domains[i]
		}
	}
	return nil
}

// readAccounts reads every account from a DC of its own domain (RBCD is not
// in the Global Catalog), one connection per domain, domains concurrently.
func readAccounts(ctx context.Context, cfg *config.Config, refs map[string]accountRef) (map[string]*accountRead, error) {
	byDomain := map[*config.Domain][]accountRef{}
	reads := map[string]*accountRead{}
	for k, r := range refs {
		if r.domain == nil {
			reads[k] = &accountRead{fact: facts.Account{Name: r.name, Kind: "unknown",
				LookupError: fmt.Sprintf("the domain of %s is not configured", r.name)}}
			continue
		}
		byDomain[r.domain] = append(byDomain[r.domain], r)
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for d, list := range byDomain {
		wg.Go(func() {
			got, err := readDomainAccounts(ctx, cfg, d, list)
			mu.Lock()
			defer mu.Unlock()
			maps.Copy(reads, got)
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	return reads, errors.Join(errs...)
}

func readDomainAccounts(ctx context.Context, cfg *config.Config, d *config.Domain, list []accountRef) (map[string]*accountRead, error) {
	reads := map[string]*accountRead{}
	failAll := func(err error) (map[string]*accountRead, error) {
		for _, r := range list {
			reads[r.key()] = &accountRead{fact: facts.Account{Name: r.name, Kind: "unknown", LookupError: err.Error()}}
		}
		return reads, err
	}
	conn, err := directory.Dial(ctx, *d, &cfg.Kerberos)
	if err != nil {
		return failAll(err)
	}
	defer conn.Close()
	var errs []error
	for _, r := range list {
		read, err := readAccount(ctx, conn, r)
		reads[r.key()] = read
		if err != nil {
			errs = append(errs, err)
		}
	}
	return reads, errors.Join(errs...)
}

// readAccount turns the directory's view of one account into facts. Not
// found is a fact, not an error.
func readAccount(ctx context.Context, conn *directory.Conn, r accountRef) (*accountRead, error) {
	read := &accountRead{fact: facts.Account{Name: r.name, Kind: "unknown"}}
	a, err := conn.LookupAccount(ctx, r.sam)
	if errors.Is(err, directory.ErrNotFound) {
		return read, nil
	}
	if err != nil {
		read.fact.LookupError = err.Error()
		return read, err
	}
	f := &read.fact
	f.Name, f.Kind, f.Found, f.DN = a.Name, a.Kind, true, a.DN
	f.UserAccountControl = uint32(a.UserAccountControl)
	f.Disabled = a.UserAccountControl.Disabled()
	f.Locked = a.Locked
	f.TrustedForDelegation = a.UserAccountControl.TrustedForDelegation()
	f.ProtocolTransition = a.UserAccountControl.TrustedToAuthForDelegation()
	f.AllowedToDelegateTo = a.AllowedToDelegateTo
	f.SupportedEncTypes = uint32(a.SupportedEncTypes)
	f.SPNs = a.SPNs
	f.RBCDRead = a.RBCDReadable
	read.sid = a.SID
	if a.SID != (adsec.SID{}) {
		f.SID = a.SID.String()
	}
	if a.RBCD != nil {
		denied := a.RBCD.DeniedSIDs()
		for _, sid := range a.RBCD.AllowedSIDs() {
			if !slices.Contains(denied, sid) {
				read.rbcdAllowed = append(read.rbcdAllowed, sid)
			}
		}
		names, err := conn.ResolveSIDs(ctx, read.rbcdAllowed)
		if err != nil {
			return read, err
		}
		for _, sid := range read.rbcdAllowed {
			name := names[sid]
			if name == "" {
				name = sid.String() // an account of another domain, or deleted
			}
			f.RBCDAllowed = append(f.RBCDAllowed, name)
		}
	}
	return read, nil
}

// judgePath matches the two accounts' delegation settings against the back
// end's SPNs: which mechanisms are set up for this path (a fact; whether that
// is enough, and what to do, is internal/diagnosis's delegationFindings).
func judgePath(p pathPlan, from, to *accountRead) facts.DelegationPath {
	path := facts.DelegationPath{
		FromInstance: p.fromInstance, LinkedServer: p.linkedServer, ToTarget: p.toTarget,
		FromAccount: p.from.name, ToAccount: p.to.name, TargetSPNs: p.toSPNs,
	}
	if from == nil || !from.fact.Found {
		return path // nothing is known without the front end's account
	}
	path.FromAccount = from.fact.Name
	path.Unconstrained = from.fact.TrustedForDelegation
	path.ProtocolTransition = from.fact.ProtocolTransition
	path.ConstrainedListed = slices.ContainsFunc(from.fact.AllowedToDelegateTo, func(s string) bool {
		return slices.ContainsFunc(p.toSPNs, func(t string) bool { return spn.Equal(s, t) })
	})
	if to != nil && to.fact.Found {
		path.ToAccount = to.fact.Name
		path.RBCD = slices.Contains(to.rbcdAllowed, from.sid)
		path.Known = len(p.toSPNs) > 0 && to.fact.RBCDRead
	}
	return path
}

func (delegationCollector) Metrics(snap *facts.Snapshot, ch chan<- prometheus.Metric) {
	for _, a := range snap.Accounts {
		if a.LookupError != "" {
			continue // unknown, not absent
		}
		accountFoundDesc.send(ch, boolFloat(a.Found), a.Name)
		if !a.Found {
			continue
		}
		accountDisabledDesc.send(ch, boolFloat(a.Disabled), a.Name)
		accountLockedDesc.send(ch, boolFloat(a.Locked), a.Name)
		accountUnconstrainedDesc.send(ch, boolFloat(a.TrustedForDelegation), a.Name)
		accountProtocolTransitionDesc.send(ch, boolFloat(a.ProtocolTransition), a.Name)
		accountConstrainedTargetsDesc.send(ch, float64(len(a.AllowedToDelegateTo)), a.Name)
		if a.RBCDRead {
			accountRBCDPrincipalsDesc.send(ch, float64(len(a.RBCDAllowed)), a.Name)
		}
		accountEncTypesDesc.send(ch, float64(a.SupportedEncTypes), a.Name)
		accountAESDesc.send(ch, boolFloat(uac.EncTypes(a.SupportedEncTypes).HasAES()), a.Name)
	}
	for _, p := range snap.DelegationPaths {
		mechanisms := []struct {
			name string
			ok   bool
		}{{"unconstrained", p.Unconstrained}, {"constrained", p.ConstrainedListed}, {"rbcd", p.RBCD}}
		anyOK := false
		for _, m := range mechanisms {
			anyOK = anyOK || m.ok
		}
		for _, m := range mechanisms {
			// When something could not be read, only a proven mechanism is
			// reported: a 0 would claim "no delegation" where it is unknown.
			if p.Known || m.ok {
				delegationPathDesc.send(ch, boolFloat(m.ok), p.FromInstance, p.LinkedServer, m.name)
			}
		}
		if p.Known || anyOK {
			delegationPathOKDesc.send(ch, boolFloat(anyOK), p.FromInstance, p.LinkedServer)
		}
	}
}
