package collector

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/directory"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/spn"
)

func init() {
	register("users", PhaseDiscover, true, func() Collector { return usersCollector{} })
}

var (
	userFoundDesc = newGauge(
		prometheus.BuildFQName(Namespace, "user", "found"),
		"Whether the delegated user or group exists in the directory (1) or not (0); absent when the directory could not be asked.",
		[]string{"user"})
	userSensitiveDesc = newGauge(
		prometheus.BuildFQName(Namespace, "user", "sensitive"),
		"Whether the user is marked \"account is sensitive and cannot be delegated\" (userAccountControl 0x100000): its identity never crosses a second hop.",
		[]string{"user"})
	userProtectedUsersDesc = newGauge(
		prometheus.BuildFQName(Namespace, "user", "protected_users"),
		"Whether the user or group is a member of Protected Users, directly or through nested groups: its tickets are never delegated.",
		[]string{"user"})
)

// usersCollector checks the users and groups whose identity must cross the
// linked-server hop for the two settings that forbid delegation whatever the
// service accounts allow.
type usersCollector struct{}

// principalRef is one configured delegated user or group.
type principalRef struct {
	index  int // position in the configuration, for a stable order
	domain *config.Domain
	sam    string
}

func (usersCollector) Update(ctx context.Context, env *Env, snap *facts.Snapshot) error {
	// The delegated users are the fleet's, not one instance's: the
	// background loop checks them, a probe does not.
	if env.Probe {
		return nil
	}
	cfg := env.Config
	configured := len(cfg.DelegatedPrincipals.Users) + len(cfg.DelegatedPrincipals.Groups)
	if configured == 0 || len(cfg.Domains) == 0 {
		return nil
	}
	out := make([]facts.DelegatedPrincipal, configured)
	byDomain := map[*config.Domain][]principalRef{}
	def := netbiosName(defaultDomain(cfg, ""))
	for i := range configured {
		raw, group := "", i >= len(cfg.DelegatedPrincipals.Users)
		if group {
			raw = cfg.DelegatedPrincipals.Groups[i-len(cfg.DelegatedPrincipals.Users)]
		} else {
			raw = cfg.DelegatedPrincipals.Users[i]
		}
		out[i] = facts.DelegatedPrincipal{Name: raw, Group: group}
		acct, err := spn.ParseAccount(raw, def)
		if err == nil && acct.Kind != spn.DomainUser && acct.Kind != spn.ManagedOrComputer {
			err = fmt.Errorf("%s is not a domain account", raw)
		}
		if err != nil {
			out[i].LookupError = err.Error()
			continue
		}
		r := principalRef{index: i, domain: findDomain(cfg, acct.Domain), sam: acct.SAMAccountName}
		if r.domain == nil {
			out[i].Name = acct.String()
			out[i].LookupError = fmt.Sprintf("the domain of %s is not configured", acct)
			continue
		}
		out[i].Name = netbiosName(r.domain) + `\` + r.sam
		byDomain[r.domain] = append(byDomain[r.domain], r)
	}

	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for d, refs := range byDomain {
		wg.Go(func() {
			err := readPrincipals(ctx, cfg, d, refs, out)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	snap.Users = out
	return errors.Join(errs...)
}

// readPrincipals fills out[r.index] for each principal of one domain; each
// goroutine writes distinct indexes.
func readPrincipals(ctx context.Context, cfg *config.Config, d *config.Domain, refs []principalRef, out []facts.DelegatedPrincipal) error {
	conn, err := directory.Dial(ctx, *d, &cfg.Kerberos)
	if err != nil {
		for _, r := range refs {
			out[r.index].LookupError = err.Error()
		}
		return err
	}
	defer conn.Close()
	var errs []error
	for _, r := range refs {
		p := &out[r.index]
		if err := readPrincipal(ctx, conn, r, p); err != nil {
			p.LookupError = err.Error()
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func readPrincipal(ctx context.Context, conn *directory.Conn, r principalRef, p *facts.DelegatedPrincipal) error {
	a, err := conn.LookupAccount(ctx, r.sam)
	if errors.Is(err, directory.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	p.Name, p.Found = a.Name, true
	p.Sensitive = a.UserAccountControl.NotDelegated()
	p.Disabled = a.UserAccountControl.Disabled()
	p.Locked = a.Locked
	p.ProtectedUsers, err = conn.ProtectedUsersMember(ctx, a.DN)
	return err
}

func (usersCollector) Metrics(snap *facts.Snapshot, ch chan<- prometheus.Metric) {
	for _, u := range snap.Users {
		if u.LookupError != "" {
			continue // unknown, not absent
		}
		userFoundDesc.send(ch, boolFloat(u.Found), u.Name)
		if !u.Found {
			continue
		}
		userSensitiveDesc.send(ch, boolFloat(u.Sensitive), u.Name)
		userProtectedUsersDesc.send(ch, boolFloat(u.ProtectedUsers), u.Name)
	}
}
