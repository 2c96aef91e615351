package cycle

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/directory"
	"github.com/kerberos-exporter/kerberos_exporter/internal/spn"
	"github.com/kerberos-exporter/kerberos_exporter/internal/sqlclient"
)

// browseFunc asks the SQL Browser on host for a named instance's TCP port.
type browseFunc func(ctx context.Context, host, instance string) (int, error)

// browsesInFlight bounds concurrent SQL Browser questions: each can wait
// for its timeout when a host is gone.
const browsesInFlight = 16

// foundSPN is an MSSQLSvc/ SPN and the domain it was found in.
type foundSPN struct {
	spn    string
	domain string
}

// discoverInstances searches the configured base DNs for MSSQLSvc/ SPNs and
// returns the instances they name (see config.Discovery), filtered and
// without those the configuration already watches, sorted by name.
func discoverInstances(ctx context.Context, cfg *config.Config, logger *slog.Logger, browse browseFunc) ([]config.SQLInstance, error) {
	d := cfg.Discovery
	bases := d.BaseDNs
	if len(bases) == 0 {
		for _, dom := range cfg.Domains {
			bases = append(bases, dom.BaseDN)
		}
	}
	conns := map[*config.Domain]*directory.Conn{}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var found []foundSPN
	var errs []error
	for _, base := range bases {
		dom := cfg.DomainOfDN(base)
		if dom == nil {
			errs = append(errs, fmt.Errorf("discovery: %s is under no configured domain", base))
			continue
		}
		conn := conns[dom]
		if conn == nil {
			var err error
			if conn, err = directory.Dial(ctx, *dom, &cfg.Kerberos); err != nil {
				errs = append(errs, fmt.Errorf("discovery in %s: %w", base, err))
				continue
			}
			conns[dom] = conn
		}
		spns, err := conn.MSSQLSvcSPNs(ctx, base)
		if err != nil {
			errs = append(errs, fmt.Errorf("discovery in %s: %w", base, err))
		}
		for _, s := range spns {
			found = append(found, foundSPN{spn: s, domain: dom.Name})
		}
	}
	return instancesFromSPNs(ctx, cfg, found, logger, browse), errors.Join(errs...)
}

// hostName is what a discovered host must look like: a DNS name. Text from
// the directory is hostile; anything else is skipped.
var hostName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)

// sqlInstanceName is what a named instance's name may be to become part of
// a label value.
var sqlInstanceName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,15}$`)

// instancesFromSPNs turns MSSQLSvc/ SPNs into instances. SQL Server
// registers MSSQLSvc/host:port for TCP and MSSQLSvc/host (default instance)
// or MSSQLSvc/host:INSTANCE (named instance); the Browser says which port a
// named instance listens on, so that the two SPNs make one instance. Short
// host names are skipped: the FQDN forms name the same servers.
func instancesFromSPNs(ctx context.Context, cfg *config.Config, found []foundSPN, logger *slog.Logger, browse browseFunc) []config.SQLInstance {
	type hostFacts struct {
		domain    string
		bare      bool // MSSQLSvc/host: a default instance
		ports     map[int]bool
		instances map[string]bool
	}
	hosts := map[string]*hostFacts{}
	for _, f := range found {
		s, err := spn.Parse(f.spn)
		if err != nil || !strings.EqualFold(s.ServiceClass, "MSSQLSvc") || s.ServiceName != "" {
			continue
		}
		host := strings.ToLower(strings.TrimSuffix(s.Host, "."))
		if !hostName.MatchString(host) {
			continue
		}
		h := hosts[host]
		if h == nil {
			h = &hostFacts{domain: f.domain, ports: map[int]bool{}, instances: map[string]bool{}}
			hosts[host] = h
		}
		switch {
		case s.Port > 0:
			h.ports[s.Port] = true
		case s.InstanceName != "":
			if !sqlInstanceName.MatchString(s.InstanceName) {
				logger.Debug("discovery skips an instance name it cannot use as a label", "host", host)
				continue
			}
			h.instances[strings.ToUpper(s.InstanceName)] = true
		default:
			h.bare = true
		}
	}

	// The Browser's answers for every named instance, asked concurrently.
	type named struct{ host, instance string }
	var toBrowse []named
	for host, h := range hosts {
		for inst := range h.instances {
			toBrowse = append(toBrowse, named{host, inst})
		}
	}
	ports := make([]int, len(toBrowse))
	if browse != nil {
		sem := make(chan struct{}, browsesInFlight)
		var wg sync.WaitGroup
		for i, n := range toBrowse {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				port, err := browse(ctx, n.host, n.instance)
				if err != nil {
					logger.Info("discovery: the SQL Browser did not give the port of a named instance; its SPNs for a port stay separate", "host", n.host, "instance", n.instance, "err", err)
					return
				}
				ports[i] = port
			})
		}
		wg.Wait()
	}
	browsed := map[named]int{}
	for i, n := range toBrowse {
		browsed[n] = ports[i]
	}

	var out []config.SQLInstance
	for host, h := range hosts {
		for inst := range h.instances {
			port := browsed[named{host, inst}]
			delete(h.ports, port)
			out = append(out, cfg.InstanceFromTemplate(host+":"+inst, host, port, inst, h.domain))
		}
		if h.bare && len(h.ports) == 0 && len(h.instances) == 0 {
			h.ports[1433] = true // only MSSQLSvc/host: a default instance
		}
		for port := range h.ports {
			name := host
			if port != 1433 {
				name += ":" + strconv.Itoa(port)
			}
			out = append(out, cfg.InstanceFromTemplate(name, host, port, "", h.domain))
		}
	}
	out = slices.DeleteFunc(out, func(s config.SQLInstance) bool {
		return !discoveryWants(cfg.Discovery, s.Name) || watchedStatically(cfg.SQLInstances, s)
	})
	slices.SortFunc(out, func(a, b config.SQLInstance) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// discoveryWants applies the include and exclude patterns to a name.
func discoveryWants(d *config.Discovery, name string) bool {
	name = strings.ToLower(name)
	match := func(patterns []string) bool {
		for _, p := range patterns {
			if ok, _ := path.Match(strings.ToLower(p), name); ok {
				return true
			}
		}
		return false
	}
	return (len(d.Include) == 0 || match(d.Include)) && !match(d.Exclude)
}

// watchedStatically says whether a configured instance already watches s:
// the same name, host and port, or host and instance name.
func watchedStatically(static []config.SQLInstance, s config.SQLInstance) bool {
	for _, c := range static {
		if c.Discovered {
			continue
		}
		sameHost := strings.EqualFold(strings.TrimSuffix(c.Host, "."), s.Host)
		switch {
		case strings.EqualFold(c.Name, s.Name),
			sameHost && s.Port != 0 && c.Port == s.Port,
			sameHost && s.InstanceName != "" && strings.EqualFold(c.InstanceName, s.InstanceName):
			return true
		}
	}
	return false
}

// withDiscovered is cfg watching its own instances and, after them, the
// discovered ones it does not already watch.
func withDiscovered(cfg *config.Config, discovered []config.SQLInstance) *config.Config {
	if len(discovered) == 0 {
		return cfg
	}
	out := *cfg
	out.SQLInstances = slices.Clone(cfg.SQLInstances)
	for _, s := range discovered {
		if !watchedStatically(cfg.SQLInstances, s) {
			out.SQLInstances = append(out.SQLInstances, s)
		}
	}
	return &out
}

// browseSQL asks the real SQL Browser.
func browseSQL(ctx context.Context, host, instance string) (int, error) {
	return sqlclient.BrowserPort(ctx, host, instance)
}

// discoveryStatusName is discovery's name in the collector status metrics.
const discoveryStatusName = "discovery"

// refreshDiscovery searches the directory again when discovery is
// configured and its last answer is older than the refresh interval, and
// returns discovery's status for this cycle (nil when not configured). A
// failed search keeps the last answer: instances do not vanish because a DC
// was down.
func (r *Runner) refreshDiscovery(ctx context.Context) *Status {
	r.mu.Lock()
	cfg, at, status := r.cfg, r.discoveredAt, r.discoveryStatus
	r.mu.Unlock()
	if cfg.Discovery == nil {
		r.mu.Lock()
		r.discovered = nil
		r.mu.Unlock()
		return nil
	}
	if !at.IsZero() && time.Since(at) < cfg.Discovery.RefreshInterval.Duration() {
		return &status
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.Global.CollectorTimeout.Duration())
	defer cancel()
	start := time.Now()
	found, err := discoverInstances(dctx, cfg, r.logger, r.browse)
	status = Status{Success: err == nil, Duration: time.Since(start)}
	if err != nil {
		status.Error = err.Error()
		r.logger.Warn("discovery failed", "duration", status.Duration, "err", err)
	} else {
		r.logger.Info("discovery done", "duration", status.Duration, "instances", len(found))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg != cfg {
		return &status // reloaded meanwhile: the next cycle discovers again
	}
	if err == nil || len(r.discovered) == 0 {
		r.discovered = found
	}
	if err == nil {
		r.discoveredAt = start // a failed search is tried again next cycle
	}
	r.discoveryStatus = status
	return &status
}
