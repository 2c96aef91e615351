package dnscheck

import (
	"context"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kerberos-exporter/kerberos_exporter/testenv/world"
)

func TestSameName(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"sqla.corp.test", "sqla.corp.test.", true},
		{"SQLA.Corp.Test", "sqla.corp.test", true},
		{"sqla.corp.test.", "SQLA.CORP.TEST.", true},
		{"sqla.corp.test", "oldname.corp.test.", false},
		{"sqla.corp.test", "sqla", false},
		{"sqla.corp.test", "sqla.corp.test.example.", false},
	} {
		if got := SameName(c.a, c.b); got != c.want {
			t.Errorf("SameName(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestReverseMatches(t *testing.T) {
	host := "sqla.corp.test"
	for _, c := range []struct {
		name  string
		addrs []string
		ptr   map[string][]string
		want  bool
	}{
		{"one address, its PTR", []string{"10.0.0.1"}, map[string][]string{"10.0.0.1": {"SQLA.corp.test."}}, true},
		{"two addresses, both PTRs", []string{"10.0.0.1", "10.0.0.2"}, map[string][]string{"10.0.0.1": {"sqla.corp.test."}, "10.0.0.2": {"sqla.corp.test."}}, true},
		{"PTR names another host", []string{"10.0.0.1"}, map[string][]string{"10.0.0.1": {"oldname.corp.test."}}, false},
		{"one of two addresses wrong", []string{"10.0.0.1", "10.0.0.2"}, map[string][]string{"10.0.0.1": {"sqla.corp.test."}, "10.0.0.2": {"oldname.corp.test."}}, false},
		{"PTR names host and another", []string{"10.0.0.1"}, map[string][]string{"10.0.0.1": {"oldname.corp.test.", "sqla.corp.test."}}, false},
		{"no PTR for an address", []string{"10.0.0.1", "10.0.0.2"}, map[string][]string{"10.0.0.1": {"sqla.corp.test."}}, false},
		{"no addresses", nil, nil, false},
	} {
		if got := ReverseMatches(host, c.addrs, c.ptr); got != c.want {
			t.Errorf("%s: ReverseMatches = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestWorldForwardAndReverse(t *testing.T) {
	w := world.ForTest(t)
	r := New([]string{w.DNSServer()}, 2*time.Second)
	ctx := context.Background()

	sqla := r.Check(ctx, "sqla.corp.test")
	if sqla.ForwardError != "" || !reflect.DeepEqual(sqla.Addresses, []string{"127.0.0.11"}) {
		t.Errorf("sqla: addresses %q, error %q; want 127.0.0.11", sqla.Addresses, sqla.ForwardError)
	}
	if !reflect.DeepEqual(sqla.PTR["127.0.0.11"], []string{"sqla.corp.test."}) || !sqla.ReverseMatches || sqla.ReverseError != "" {
		t.Errorf("sqla: PTR %q, matches %v, error %q; want sqla.corp.test. matching", sqla.PTR, sqla.ReverseMatches, sqla.ReverseError)
	}

	// Seeds 001 and 004: the address maps back to a former name.
	sqlm := r.Check(ctx, "sqlm.corp.test")
	if !reflect.DeepEqual(sqlm.Addresses, []string{"127.0.0.19"}) {
		t.Errorf("sqlm: addresses %q, error %q; want 127.0.0.19", sqlm.Addresses, sqlm.ForwardError)
	}
	if !reflect.DeepEqual(sqlm.PTR["127.0.0.19"], []string{"oldname.corp.test."}) || sqlm.ReverseMatches {
		t.Errorf("sqlm: PTR %q, matches %v; want oldname.corp.test. not matching", sqlm.PTR, sqlm.ReverseMatches)
	}

	if sqla.CanonicalName != "sqla.corp.test" || sqla.CNAMEError != "" {
		t.Errorf("sqla: canonical name %q (%s); want itself, an A record", sqla.CanonicalName, sqla.CNAMEError)
	}
	if alias, known := sqla.IsCNAME(); alias || !known {
		t.Errorf("sqla: IsCNAME = %v, %v; want false, true", alias, known)
	}

	// Seed 004: a DNS alias. Clients ask for the canonical host's SPN, and
	// the address's PTR rightly names the canonical host.
	reports := r.Check(ctx, "reports.corp.test")
	if reports.CanonicalName != "rptnode1.corp.test" || !reflect.DeepEqual(reports.Addresses, []string{"127.0.0.24"}) {
		t.Errorf("reports: canonical %q (%s), addresses %q; want rptnode1.corp.test, 127.0.0.24", reports.CanonicalName, reports.CNAMEError, reports.Addresses)
	}
	if alias, known := reports.IsCNAME(); !alias || !known || !reports.ReverseMatches {
		t.Errorf("reports: IsCNAME = %v, %v, reverse matches %v; want an alias whose PTR names its canonical host", alias, known, reports.ReverseMatches)
	}

	missing := r.Check(ctx, "nosuchhost.corp.test")
	if missing.CanonicalName != "" {
		t.Errorf("nosuchhost: canonical name %q; want unknown", missing.CanonicalName)
	}
	if len(missing.Addresses) != 0 || !missing.NotFound || !strings.Contains(missing.ForwardError, "no such host") || !strings.Contains(missing.ForwardError, w.DNSServer()) {
		t.Errorf("nosuchhost: addresses %q, error %q; want no addresses and a 'no such host' error naming %s", missing.Addresses, missing.ForwardError, w.DNSServer())
	}
}

// A dead server first in the list: its UDP port refuses, the next answers.
func TestWorldFallsBackPastRefusingServer(t *testing.T) {
	w := world.ForTest(t)
	dead := refusingUDPAddr(t)
	// A long timeout: waiting it out on the refusing server, instead of
	// moving on at the refusal, would take 20s per query.
	r := New([]string{dead, w.DNSServer()}, 20*time.Second)
	start := time.Now()
	got := r.Check(context.Background(), "sqla.corp.test")
	if !reflect.DeepEqual(got.Addresses, []string{"127.0.0.11"}) || !got.ReverseMatches {
		t.Errorf("sqla via %s then %s: %+v; want 127.0.0.11 with a matching PTR", dead, w.DNSServer(), got)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("fallback took %s: the refusing server's timeout was waited out", took)
	}
}

// A server that swallows queries: each query to it waits for the timeout,
// then the next server answers.
func TestWorldFallsBackPastSilentServer(t *testing.T) {
	w := world.ForTest(t)
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	r := New([]string{silent.LocalAddr().String(), w.DNSServer()}, 300*time.Millisecond)
	start := time.Now()
	got := r.Check(context.Background(), "sqla.corp.test")
	if !reflect.DeepEqual(got.Addresses, []string{"127.0.0.11"}) || !got.ReverseMatches {
		t.Errorf("sqla via a silent server then %s: %+v; want 127.0.0.11 with a matching PTR", w.DNSServer(), got)
	}
	// One forward and one reverse query, each waiting out the silent server once.
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("lookups took %s with a 300ms timeout per server", took)
	}
}

func TestEveryServerDeadNamesEach(t *testing.T) {
	a, b := refusingUDPAddr(t), refusingUDPAddr(t)
	got := New([]string{a, b}, time.Second).Check(context.Background(), "sqla.corp.test")
	if len(got.Addresses) != 0 || got.NotFound || !strings.Contains(got.ForwardError, a) || !strings.Contains(got.ForwardError, b) {
		t.Errorf("both servers dead: %+v; want no addresses and an error naming %s and %s", got, a, b)
	}
}

// refusingUDPAddr is a loopback UDP port where nothing listens.
func refusingUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}
