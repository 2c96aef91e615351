// Command sqlstandin serves SQL Server stand-in scenarios (see
// testenv/README.md) until SIGTERM or SIGINT:
//
//	sqlstandin -scenario testenv/scenarios/sqla.yml -scenario testenv/scenarios/sqlb.yml
//
// Every scenario listens on its own address; linked servers of one reach
// the others by their listen addresses. With -ready FILE it writes FILE
// once every listener is bound (one "name address" line per scenario) and
// removes it on shutdown, so that a script can wait for the stand-ins
// instead of racing them.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
)

type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	var scenarioFiles files
	flag.Var(&scenarioFiles, "scenario", "scenario YAML file (repeatable)")
	readyFile := flag.String("ready", "", "write this file once every scenario listens (name and address a line); removed on shutdown")
	startDelay := flag.Duration("start-delay", 0, "wait this long before listening, as a slow server would (to test that a script waits for -ready)")
	flag.Parse()
	if len(scenarioFiles) == 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: sqlstandin [-ready FILE] -scenario FILE [-scenario FILE ...]")
		os.Exit(2)
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	var scenarios []*tdsserver.Scenario
	for _, f := range scenarioFiles {
		sc, err := tdsserver.LoadScenario(f)
		if err != nil {
			log.Fatal(err)
		}
		scenarios = append(scenarios, sc)
	}
	if *readyFile != "" {
		_ = os.Remove(*readyFile) // a stale one from an earlier run must not pass for this one
	}
	time.Sleep(*startDelay)
	g, err := tdsserver.StartGroup(scenarios, tdsserver.GroupOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if *readyFile != "" {
		// StartGroup returns with every listener bound: connections are
		// accepted from now on.
		if err := writeReady(*readyFile, g); err != nil {
			g.Close()
			log.Fatal(err)
		}
		defer os.Remove(*readyFile)
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	log.Printf("%v: shutting down", s)
	if err := g.Close(); err != nil {
		log.Printf("close: %v", err)
	}
}

// writeReady writes the ready file whole or not at all (a temporary file
// renamed into place), so that a reader never sees half of it.
func writeReady(file string, g *tdsserver.Group) error {
	var b strings.Builder
	for _, s := range g.Servers() {
		fmt.Fprintf(&b, "%s %s\n", s.Scenario().Name, s.Addr())
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	return nil
}
