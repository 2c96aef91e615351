package tdsserver_test

import (
	"context"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/internal/sqlclient"
	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
)

// The stand-in's SQL Browser answers the exporter's own client and
// go-mssqldb's with the named instance's real (here ephemeral) port, and
// nothing for an instance it does not serve. The scenario is moved to an
// address of its own so that the world tests' SQL N may run meanwhile.
func TestBrowserGivesANamedInstancesPort(t *testing.T) {
	sc, err := tdsserver.LoadScenario(filepath.Join("..", "scenarios", "sqln.yml"))
	if err != nil {
		t.Fatal(err)
	}
	sc.Name, sc.Listen = "sqln-unit", "127.0.0.124:49733"
	g := startScenarios(t, nil, sc)
	srv := g.Server("sqln-unit")
	host, portText, _ := net.SplitHostPort(srv.Addr())
	want, _ := strconv.Atoi(portText)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range []string{"INST1", "inst1"} {
		got, err := sqlclient.BrowserPort(ctx, host, name)
		if err != nil || got != want {
			t.Errorf("Browser's port for %s: %d, %v; want %d", name, got, err, want)
		}
	}
	short, cancelShort := context.WithTimeout(context.Background(), time.Second)
	defer cancelShort()
	if got, err := sqlclient.BrowserPort(short, host, "NOPE"); err == nil {
		t.Errorf("Browser answered port %d for an instance it does not serve", got)
	}

	// go-mssqldb finds the port by itself from host\instance.
	d := (&url.URL{Scheme: "sqlserver", User: url.UserPassword(sqlUser, sqlPassword), Host: host, Path: "INST1",
		RawQuery: url.Values{"encrypt": {"disable"}, "dial timeout": {"3"}}.Encode()}).String()
	db := openDSN(t, d)
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("go-mssqldb through the Browser: %v", err)
	}
	logins := 0
	for _, s := range srv.LoginHistory() {
		if s.Login == sqlUser {
			logins++
		}
	}
	if logins == 0 {
		t.Errorf("no %s login reached the named instance through the Browser", sqlUser)
	}
}
