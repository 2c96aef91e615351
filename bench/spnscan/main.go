// Command spnscan prints the forest-wide SPN scan's figures against a real
// directory (bench/directory.sh provisions one): a full scan, an incremental
// scan after 10 changes, peak RSS, and the SPN index's heap at 1M SPNs.
// Figures, not assertions.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/kerberos-exporter/kerberos_exporter/collector"
	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/directory"
)

func main() {
	url := flag.String("url", "", "ldaps:// URL of the DC")
	realm := flag.String("realm", "", "the domain's DNS name in upper case")
	base := flag.String("base", "", "the domain's base DN")
	user := flag.String("user", "", "bind as")
	password := flag.String("password", "", "bind password")
	accounts := flag.Int("accounts", 0, "accounts provisioned (bNNNNNN in OU=Bench)")
	rawSeconds := flag.Float64("raw-seconds", 0, "the raw ldapsearch dump's time, for the ratio")
	rawCPU := flag.Float64("raw-cpu", 0, "the DC CPU seconds of the raw dump, for the ratio")
	dcSession := flag.Int("dc-session", 0, "session ID of the DC's samba processes, to read the CPU time they use")
	flag.Parse()

	os.Setenv("KTE_BENCH_PASSWORD", *password)
	yml := fmt.Sprintf(`domains:
  - name: %s
    netbios_name: BENCH
    base_dn: %s
    domain_controllers: [%q]
    global_catalogs: [%q]
    tls: {insecure_skip_verify: true}
    bind: {method: simple, username: %q, password: {env: KTE_BENCH_PASSWORD}}
    timeout: 120s
`, strings.ToLower(*realm), *base, *url, *url+":3269", *user)
	cfg, err := config.Parse("bench.yml", []byte(yml))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	scanner := collector.NewSPNScanner()
	logger := slog.New(slog.DiscardHandler)

	dcCPU := func() float64 { return sessionCPU(*dcSession) }
	cpu0 := dcCPU()
	full := scanner.Scan(ctx, cfg, logger)
	fullCPU := dcCPU() - cpu0
	if full.Error != "" {
		log.Fatalf("full scan: %s", full.Error)
	}
	rssFull := peakRSS()
	fmt.Printf("full scan:        %6.2fs  %d accounts with SPNs, %d duplicated SPNs", full.ScanDuration.Seconds(), full.AccountsScanned, full.Total)
	if *rawSeconds > 0 {
		fmt.Printf("  (%.2f x the raw dump)", full.ScanDuration.Seconds()/(*rawSeconds))
	}
	fmt.Println()

	changed := change(*url, *user, *password, *base, *accounts)
	cpu0 = dcCPU()
	inc := scanner.Scan(ctx, cfg, logger)
	incCPU := dcCPU() - cpu0
	if inc.Error != "" {
		log.Fatalf("incremental scan: %s", inc.Error)
	}
	if inc.Scans["incremental"] != 1 {
		log.Fatalf("the second scan was not incremental: %v", inc.Scans)
	}
	fmt.Printf("incremental scan: %6.3fs  after %d changes: %.0f x faster than the full scan (%d accounts, %d duplicated SPNs)\n",
		inc.ScanDuration.Seconds(), changed, full.ScanDuration.Seconds()/inc.ScanDuration.Seconds(), inc.AccountsScanned, inc.Total)
	if *dcSession > 0 {
		fmt.Printf("DC CPU time:      %6.2fs for the full scan (%.2f x the raw dump's), %.2fs for the incremental one: %.0f x less\n",
			fullCPU, fullCPU/max(*rawCPU, 0.01), incCPU, fullCPU/max(incCPU, 0.01))
	}
	searchAlone(ctx, cfg, logger, changed)
	fmt.Printf("peak RSS:         %6.1f MB after the full scan, %.1f MB after both (the exporter's scan alone: no collectors, no HTTP)\n",
		rssFull, peakRSS())

	spns := 2 * full.AccountsScanned
	heap := liveHeap()
	runtime.KeepAlive(scanner)
	fmt.Printf("live heap:        %6.1f MB with the index of ~%d SPNs kept (%.0f bytes per SPN)\n", heap, spns, heap*1e6/float64(max(spns, 1)))
}

// searchAlone times the incremental search by itself, on a connection
// already set up: the DC's share of an incremental scan, without the dial,
// TLS handshake, bind and rootDSE reads around it.
func searchAlone(ctx context.Context, cfg *config.Config, logger *slog.Logger, changes int) {
	conn, err := directory.DialGlobalCatalog(ctx, cfg.Domains[0], &cfg.Kerberos, logger)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	st, err := conn.ServerState(ctx)
	if err != nil {
		log.Fatal(err)
	}
	n := 0
	count := func(directory.SPNAccount) error { n++; return nil }
	if _, err := conn.AccountName(ctx, cfg.Domains[0].BaseDN, "x"); err != nil { // reads the NetBIOS names once
		log.Fatal(err)
	}
	start := time.Now()
	if err := conn.ScanSPNs(ctx, st.HighestCommittedUSN-int64(changes), count); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("  of which the search: %.3fs for the last %d USNs (%d accounts), on a connection already bound\n", time.Since(start).Seconds(), changes, n)
}

// change makes 10 changes: an SPN added to 5 accounts, and the added SPN of
// an earlier run or the second SPN replaced on 5 others.
func change(url, user, password, base string, accounts int) int {
	conn, err := ldap.DialURL(url, ldap.DialWithTLSConfig(insecureTLS()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Bind(user, password); err != nil {
		log.Fatal(err)
	}
	stamp := time.Now().UnixNano()
	n := 0
	for i := range 10 {
		// accounts 100k+50+i: never one of the duplicates (i % 100 == 0 or 1), which samldb would refuse to rewrite
		sam := fmt.Sprintf("b%06d", (100*((i*7919+int(stamp%1000))%max(accounts/100, 1))+50+i)%max(accounts, 1))
		req := ldap.NewModifyRequest("CN="+sam+",OU=Bench,"+base, nil)
		spn := fmt.Sprintf("HTTP/%s-%d.bench.test", sam, stamp)
		if i%2 == 0 {
			req.Add("servicePrincipalName", []string{spn})
		} else {
			req.Replace("servicePrincipalName", []string{"MSSQLSvc/" + sam + ".bench.test:1433", spn})
		}
		if err := conn.Modify(req); err != nil {
			log.Fatalf("changing %s: %v", sam, err)
		}
		n++
	}
	return n
}

func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} } // the bench DC's self-signed certificate

// sessionCPU is the user and system CPU time, in seconds, of every process in
// the given session (the samba root process and its workers), 0 without one.
func sessionCPU(sid int) float64 {
	if sid <= 0 {
		return 0
	}
	dirs, _ := os.ReadDir("/proc")
	var ticks int64
	for _, d := range dirs {
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// after "pid (comm) ": state ppid pgrp session ... utime(14) stime(15)
		rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
		f := strings.Fields(rest)
		if len(f) < 13 || f[3] != strconv.Itoa(sid) {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return float64(ticks) / 100 // USER_HZ
}

// peakRSS is VmHWM, in MB.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb float64
		if _, err := fmt.Sscanf(line, "VmHWM: %f kB", &kb); err == nil {
			return kb / 1024
		}
	}
	return 0
}

func liveHeap() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / 1e6
}
