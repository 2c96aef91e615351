package cycle

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

// TestWorldFortyFrontEndsWithoutDelegationAreOneCause: forty instances run
// as one service account (CORP\sqlsvc_c, which the world does not trust for
// delegation), each with a self-mapped linked server to SQL B. The
// diagnosis shows one delegation cause on the account, affecting the forty
// linked servers, whose fix has the msDS-AllowedToDelegateTo line once.
func TestWorldFortyFrontEndsWithoutDelegationAreOneCause(t *testing.T) {
	const n = 40
	w := world.ForTest(t)
	t.Setenv(tdsserver.TestenvDirVar, w.Dir)
	t.Setenv("KRBMON_SQL_PASSWORD", "Passw0rd!Sql1")

	sqlb, err := tdsserver.LoadScenario(filepath.Join("..", "testenv", "scenarios", "sqlb.yml"))
	if err != nil {
		t.Fatal(err)
	}
	scenarios := []*tdsserver.Scenario{sqlb}
	for i := 1; i <= n; i++ {
		// Each front end plays SQL C (CORP\sqlsvc_c, self-mapped link to
		// SQLB without delegation) on an address of its own.
		sc, err := tdsserver.LoadScenario(filepath.Join("..", "testenv", "scenarios", "sqlc.yml"))
		if err != nil {
			t.Fatal(err)
		}
		sc.Name = fmt.Sprintf("fe%02d", i)
		sc.Listen = fmt.Sprintf("127.0.0.%d:1433", 100+i)
		sc.Sessions, sc.ErrorLog.Lines = nil, nil
		scenarios = append(scenarios, sc)
	}
	g, err := tdsserver.StartGroup(scenarios, tdsserver.GroupOptions{EphemeralPorts: true, Logf: func(string, ...any) {}, HopTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })

	var extra strings.Builder
	entry := func(name, host, netbios, addr string) {
		ip, port, _ := net.SplitHostPort(addr)
		fmt.Fprintf(&extra, "  - {name: %s, host: %s, netbios_name: %s, address: %s, port: %s, encrypt: disable, timeout: 20s, "+
			"auth: {method: sql, username: krbmon_sql, password: {env: KRBMON_SQL_PASSWORD}}, linked_servers: {test: [\"*\"], timeout: 20s}}\n",
			name, host, netbios, ip, port)
	}
	entry("sqlb", "sqlb.corp.test", "SQLB", g.Server("sqlb").Addr())
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("fe%02d", i)
		entry(name, "sqlc.corp.test", "SQLC", g.Server(name).Addr())
	}
	cfg := w.Config(t, nil, extra.String())

	onlyCollectors(t, "sql", "linkedserver", "spn", "delegation")
	res := NewRunner(cfg, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))).RunOnce(context.Background())
	for name, st := range res.Status {
		if !st.Success {
			t.Errorf("collector %s failed: %s", name, st.Error)
		}
	}

	var delegation []int
	for i, c := range res.Causes {
		if c.Cause == "service_account_cannot_delegate" {
			delegation = append(delegation, i)
		}
	}
	if len(delegation) != 1 {
		for _, c := range res.Causes {
			t.Logf("cause %s %s %s affects %d", c.Cause, c.Severity, c.Subject, len(c.Affected))
		}
		t.Fatalf("%d delegation causes, want 1", len(delegation))
	}
	c := res.Causes[delegation[0]]
	var want []string
	for i := 1; i <= n; i++ {
		want = append(want, fmt.Sprintf("fe%02d/SQLB", i))
	}
	if c.Subject != `CORP\sqlsvc_c` || c.Severity != "critical" || !slices.Equal(c.Affected, want) {
		t.Errorf("cause %s %s %s, affected %v; want CORP\\sqlsvc_c critical, affected %v", c.Cause, c.Severity, c.Subject, c.Affected, want)
	}
	checks := map[string]int{}
	for _, f := range c.Findings {
		checks[f.Check]++
	}
	// The exporter logs in with a SQL login, whose self-mapped hop works:
	// the delegation findings alone make the cause.
	if checks["delegation_missing"] != n || len(checks) != 1 {
		t.Errorf("its findings by check: %v, want %d delegation_missing", checks, n)
	}
	lines := 0
	for _, l := range c.Script {
		if strings.Contains(l, "msDS-AllowedToDelegateTo") && strings.HasPrefix(l, "Set-ADUser 'sqlsvc_c'") {
			lines++
		}
	}
	if lines != 1 {
		t.Errorf("the fix has %d msDS-AllowedToDelegateTo lines, want 1:\n%s", lines, strings.Join(c.Script, "\n"))
	}
	if r := res.Causes[0]; r.Severity != "critical" {
		t.Errorf("the first cause is %s %s, not critical", r.Cause, r.Severity)
	}
}
