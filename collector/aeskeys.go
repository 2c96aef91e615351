package collector

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/directory"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
)

func init() {
	register("aeskeys", PhaseDirectory, true, func() Collector { return aesKeysCollector{} })
}

var (
	domainAESSinceDesc = newGauge(
		prometheus.BuildFQName(Namespace, "domain", "aes_keys_since_timestamp_seconds"),
		"When the domain became able to make AES keys: creation time of its Read-only Domain Controllers group (RID 521); absent when unknown.",
		[]string{"domain"})
	accountPasswordLastSetDesc = newGauge(
		prometheus.BuildFQName(Namespace, "account", "password_last_set_timestamp_seconds"),
		"When the account's password, and so its Kerberos keys, was last set (pwdLastSet); service accounts and each domain's krbtgt; absent when never set or unknown.",
		[]string{"account"})
	accountAESKeysPossibleDesc = newGauge(
		prometheus.BuildFQName(Namespace, "account", "aes_keys_possible"),
		"Whether the account can have AES keys (1: password set after the domain could make them) or not (0: RC4 key only, no ticket once DCs enforce AES); service accounts and each domain's krbtgt; absent when unknown.",
		[]string{"account"})
)

// aesKeysCollector reads, for every domain, when it became able to make AES
// keys and its krbtgt account, and for every target's service account when
// its password was set and which encryption types it allows: an account
// whose password predates AES support has an RC4 key only, and gets no
// ticket at all once the domain controllers refuse RC4.
type aesKeysCollector struct{}

type keysRef struct {
	sam    string
	name   string // DOMAIN\sam as configured
	domain *config.Domain
}

func (aesKeysCollector) Update(ctx context.Context, env *Env, snap *facts.Snapshot) error {
	cfg := env.Config
	if len(cfg.Domains) == 0 {
		return nil
	}
	byDomain := map[*config.Domain][]keysRef{}
	seen := map[string]bool{}
	for _, t := range expectedTargets(env, snap) {
		domain := targetDomain(cfg, &t)
		if t.SAM == "" || domain == nil {
			continue // no directory identity, or a domain the exporter cannot ask
		}
		key := strings.ToLower(domain.Name + `\` + t.SAM)
		if seen[key] {
			continue
		}
		seen[key] = true
		byDomain[domain] = append(byDomain[domain], keysRef{sam: t.SAM, name: t.Account, domain: domain})
	}
	domains := make([]facts.DomainAES, len(cfg.Domains))
	accounts := make([][]facts.AccountKeys, len(cfg.Domains))
	errs := make([]error, len(cfg.Domains))
	var wg sync.WaitGroup
	for i := range cfg.Domains {
		d := &cfg.Domains[i]
		wg.Go(func() {
			domains[i], accounts[i], errs[i] = readDomainKeys(ctx, cfg, d, byDomain[d])
		})
	}
	wg.Wait()
	snap.AESDomains = domains
	for _, a := range accounts {
		snap.AccountKeys = append(snap.AccountKeys, a...)
	}
	return errors.Join(errs...)
}

// readDomainKeys asks one DC of the domain, one search after another.
func readDomainKeys(ctx context.Context, cfg *config.Config, d *config.Domain, refs []keysRef) (facts.DomainAES, []facts.AccountKeys, error) {
	dom := facts.DomainAES{Domain: d.Name, Krbtgt: facts.AccountKeys{Name: netbiosName(d) + `\krbtgt`, Domain: d.Name}}
	var accounts []facts.AccountKeys
	failAll := func(err error) (facts.DomainAES, []facts.AccountKeys, error) {
		dom.Error, dom.Krbtgt.Error = err.Error(), err.Error()
		for _, r := range refs {
			accounts = append(accounts, facts.AccountKeys{Name: r.name, Domain: d.Name, Error: err.Error()})
		}
		return dom, accounts, err
	}
	conn, err := directory.Dial(ctx, *d, &cfg.Kerberos)
	if err != nil {
		return failAll(err)
	}
	defer conn.Close()
	var errs []error
	aes, err := conn.ReadDomainAES(ctx)
	if err != nil {
		dom.Error = err.Error()
		errs = append(errs, err)
	}
	dom.AESSince, dom.Born = aes.AESSince, aes.Born
	dom.FunctionalLevel, dom.FunctionalLevelKnown = aes.FunctionalLevel, aes.FunctionalLevelKnown
	dom.Krbtgt = readKeys(ctx, conn, d, dom.Krbtgt.Name, "", &errs)
	for _, r := range refs {
		accounts = append(accounts, readKeys(ctx, conn, d, r.name, r.sam, &errs))
	}
	return dom, accounts, errors.Join(errs...)
}

// readKeys reads one account (krbtgt when sam is ""); not found is a fact.
func readKeys(ctx context.Context, conn *directory.Conn, d *config.Domain, name, sam string, errs *[]error) facts.AccountKeys {
	out := facts.AccountKeys{Name: name, Domain: d.Name}
	var k directory.AccountKeys
	var err error
	if sam == "" {
		k, err = conn.ReadKrbtgtKeys(ctx)
	} else {
		k, err = conn.ReadAccountKeys(ctx, sam)
	}
	if errors.Is(err, directory.ErrNotFound) {
		return out
	}
	if err != nil {
		out.Error = err.Error()
		*errs = append(*errs, err)
		return out
	}
	out.Found = true
	// The directory's own spelling of DOMAIN\sam, so that it compares with
	// the SPN holders and the delegation collector's accounts.
	if spelled, err := conn.AccountName(ctx, k.DN, k.SAM); err == nil {
		out.Name = spelled
	}
	out.PwdLastSet = k.PwdLastSet
	out.SupportedEncTypes, out.SupportedEncTypesSet = k.SupportedEncTypes, k.SupportedEncTypesSet
	return out
}

func (aesKeysCollector) Metrics(snap *facts.Snapshot, ch chan<- prometheus.Metric) {
	domains := map[string]facts.DomainAES{}
	for _, d := range snap.AESDomains {
		domains[strings.ToLower(d.Domain)] = d
		if !d.AESSince.IsZero() {
			domainAESSinceDesc.send(ch, float64(d.AESSince.Unix()), d.Domain)
		}
	}
	emit := func(a facts.AccountKeys) {
		if !a.Found {
			return
		}
		if !a.PwdLastSet.IsZero() {
			accountPasswordLastSetDesc.send(ch, float64(a.PwdLastSet.Unix()), a.Name)
		}
		// Known without a password time only in a domain below the 2008
		// level, where no password has made AES keys.
		if possible, known := domains[strings.ToLower(a.Domain)].AESKeysPossible(a.PwdLastSet); known {
			accountAESKeysPossibleDesc.send(ch, boolFloat(possible), a.Name)
		}
	}
	for _, d := range snap.AESDomains {
		emit(d.Krbtgt)
	}
	for _, a := range snap.AccountKeys {
		emit(a)
	}
}
