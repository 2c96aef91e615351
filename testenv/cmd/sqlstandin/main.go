// Command sqlstandin serves SQL Server stand-in scenarios (see
// testenv/README.md) until SIGTERM or SIGINT:
//
//	sqlstandin -scenario testenv/scenarios/sqla.yml -scenario testenv/scenarios/sqlb.yml
//
// Every scenario listens on its own address; linked servers of one reach
// the others by their listen addresses.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kerberos-exporter/kerberos_exporter/testenv/tdsserver"
)

type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	var scenarioFiles files
	flag.Var(&scenarioFiles, "scenario", "scenario YAML file (repeatable)")
	flag.Parse()
	if len(scenarioFiles) == 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: sqlstandin -scenario FILE [-scenario FILE ...]")
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
	g, err := tdsserver.StartGroup(scenarios, tdsserver.GroupOptions{})
	if err != nil {
		log.Fatal(err)
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	log.Printf("%v: shutting down", s)
	if err := g.Close(); err != nil {
		log.Printf("close: %v", err)
	}
}
