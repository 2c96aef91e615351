package diagnosis_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/prometheus/common/promslog"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
	"github.com/kerberos-exporter/kerberos_exporter/internal/facts"
	"github.com/kerberos-exporter/kerberos_exporter/internal/report"
)

// hostileNames are names a directory or a SQL Server may hand us. Each is
// planted in the facts where AD or SQL Server supplies a name, then every
// renderer's output is checked: nothing becomes code in the fix script,
// nothing reaches a terminal as a control sequence, nothing becomes markup.
var hostileNames = map[string]string{
	"newline":        "EVIL\nStart-Process calc #",
	"crlf":           "EVIL\r\nStart-Process calc",
	"cr":             "EVIL\rStart-Process calc",
	"u2028":          "EVIL\u2028Start-Process calc",
	"u2029":          "EVIL\u2029Start-Process calc",
	"nel":            "EVIL\u0085Start-Process calc",
	"ascii quote":    "O'Brien'; Start-Process calc; '",
	"u2018":          "O\u2018Brien\u2018; Start-Process calc; \u2018",
	"u2019":          "O\u2019Brien\u2019; Start-Process calc; \u2019",
	"u201a":          "O\u201aBrien\u201a; Start-Process calc; \u201a",
	"u201b":          "O\u201bBrien\u201b; Start-Process calc; \u201b",
	"double quotes":  "a\"b\u201cc\u201dd\u201ee",
	"backtick":       "svc`nStart-Process calc",
	"subexpression":  "svc$(Start-Process calc)",
	"variable":       "svc$env:USERNAME",
	"escape clear":   "svc\x1b[2J\x1b]0;pwned\x07",
	"nul":            "svc\x00x",
	"bidi override":  "svc\u202egnp.exe",
	"markup":         "</pre><script>alert(1)</script>",
	"pipe and amp":   "svc | Start-Process calc & calc",
	"long":           strings.Repeat("A", 70000),
	"quote at end":   "svc'",
	"typo dash word": "\u2013Force",
}

// plant puts name wherever the facts carry a name that AD or SQL Server
// supplied and a finding with a script follows from it.
func plant(name string) (*diagnosis.Finding, []diagnosis.Finding) {
	cfg, snap := diagnosis.HealthyWorld()
	acct := `CORP\` + name
	// An SPN on the wrong account (setspn -D SPN holder).
	snap.SPNs[0].Holders = []string{acct}
	// A linked server with a hostile name whose second hop is not allowed.
	ls := snap.LinkedServers["sqla"]
	ls.Servers[0].Name = name
	ls.Servers[0].DataSource = name
	snap.DelegationPaths[0].LinkedServer = name
	snap.DelegationPaths[0].ConstrainedListed = false
	// A back-end account whose DN (from AD) is hostile.
	snap.Accounts[1].DN = "CN=" + name + ",CN=Users,DC=corp,DC=test"
	// A delegated user, sensitive, in Protected Users.
	snap.Users = []facts.DelegatedPrincipal{{Name: acct, Found: true, Sensitive: true, ProtectedUsers: true}}
	cfg.DelegatedPrincipals.Users = []string{acct}
	// A stale PTR name.
	snap.DNS[0].PTR = map[string][]string{"127.0.0.11": {name + "."}}
	snap.DNS[0].ReverseMatches = false
	// An error message from SQL Server.
	snap.SQL["sqlb"].Up = false
	snap.SQL["sqlb"].ConnectError = "Login failed: " + name
	// An RC4 ticket for the SPN the hostile account holds, that account
	// without AES keys, and a DNS alias whose canonical host (from DNS) and
	// its SPN's holder are hostile.
	snap.Tickets[0].TicketEType = "rc4-hmac"
	snap.AccountKeys = append(snap.AccountKeys, facts.AccountKeys{Name: acct, Domain: "corp.test", Found: true, PwdLastSet: time.Date(2005, 1, 1, 0, 0, 0, 0, time.UTC)})
	snap.CanonicalSPNs = []facts.CanonicalSPN{{Target: "crm", SPN: "HTTP/crm.corp.test", Alias: "crm.corp.test", CanonicalHost: name,
		Requested: "HTTP/" + name, ExpectedAccount: `CORP\crmweb`, Holders: []string{acct}}}
	fs := diagnosis.Evaluate(cfg, snap)
	return nil, fs
}

func TestHostileNamesThroughEveryRenderer(t *testing.T) {
	for label, name := range hostileNames {
		t.Run(label, func(t *testing.T) {
			_, findings := plant(name)
			planted := false
			for _, f := range findings {
				if strings.Contains(strings.Join(append([]string{f.Target, f.Summary, f.Detail}, f.Script...), "\n"), name) {
					planted = true
				}
			}
			if !planted {
				t.Fatalf("no finding carries the hostile name: the test plants it nowhere that matters")
			}
			cfg, _ := diagnosis.HealthyWorld()
			rep := report.New(cfg, findings, []report.Collector{{Name: "sql", Error: "dial " + name}}, time.Unix(0, 0))

			var script bytes.Buffer
			if err := rep.WriteFixScript(&script); err != nil {
				t.Fatal(err)
			}
			checkScript(t, script.String())
			// A name that can be quoted is quoted, per the language's rules,
			// so that the command acts on exactly that name; one that cannot
			// (a line break, a control character) is refused, visibly.
			toks, _ := psTokenize(script.String())
			quoted := false
			for _, tok := range toks {
				if tok.kind == "string" && tok.text == name {
					quoted = true
				}
			}
			switch clean := !strings.ContainsFunc(name, func(r rune) bool {
				return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
			}); {
			case clean && len(name) < 4000 && !quoted:
				t.Errorf("no command carries the name as one quoted string:\n%s", script.String())
			case !clean && !strings.Contains(script.String(), "# REFUSED"):
				t.Errorf("a command with an unquotable name was not refused:\n%s", script.String())
			}

			var text bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			checkTerminalSafe(t, "text report", text.String())
			if esc := report.EscapeText(name); esc != name && len(name) < 100 && !strings.Contains(text.String(), esc) {
				t.Errorf("text report does not show the name escaped as %q", esc)
			}

			var js bytes.Buffer
			if err := rep.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			checkTerminalSafe(t, "JSON", js.String())
			var decoded struct {
				Groups []struct {
					Findings []diagnosis.Finding `json:"findings"`
				} `json:"groups"`
			}
			if err := json.Unmarshal(js.Bytes(), &decoded); err != nil {
				t.Fatalf("JSON does not parse: %v", err)
			}
			if !strings.Contains(fmt.Sprint(decoded), strings.ToValidUTF8(name, "\uFFFD")) {
				t.Errorf("JSON lost the exact name: it must escape, never alter")
			}

			var page bytes.Buffer
			if err := rep.WriteHTML(&page, report.Page{MetricsPath: "/metrics", ProbePath: "/probe"}); err != nil {
				t.Fatal(err)
			}
			checkTerminalSafe(t, "HTML", page.String())
			// The page's own script is the one <script> element; a name
			// must never add another.
			if n := strings.Count(page.String(), "<script"); n != 1 {
				t.Errorf("HTML has %d <script elements, want the page's own only: markup from a name", n)
			}
		})
	}
}

// TestHostileNamesInRBCDLine: the one resource-based delegation line of a
// back end names, as a command to run (the accounts are in different
// domains), a principal it allows today and a front end, both from AD. A
// name that can be quoted is one quoted string of that command; one that
// cannot makes the whole line refused, never a shorter list.
func TestHostileNamesInRBCDLine(t *testing.T) {
	for label, name := range hostileNames {
		t.Run(label, func(t *testing.T) {
			cfg, snap := diagnosis.HealthyWorld()
			cfg.Domains = append(cfg.Domains, config.Domain{Name: "emea.corp.test", NetBIOSName: "EMEA"})
			cfg.SQLInstances[1].Domain, cfg.SQLInstances[1].ServiceAccount = "emea.corp.test", `EMEA\sqlsvc_b`
			snap.Accounts[1].Name = `EMEA\sqlsvc_b`
			snap.Accounts[1].RBCDAllowed = []string{`EMEA\` + name}
			p := &snap.DelegationPaths[0]
			p.ToAccount, p.ConstrainedListed = `EMEA\sqlsvc_b`, false
			p.FromAccount = `CORP\` + name
			findings := diagnosis.Evaluate(cfg, snap)
			var script bytes.Buffer
			if err := report.New(cfg, findings, nil, time.Unix(0, 0)).WriteFixScript(&script); err != nil {
				t.Fatal(err)
			}
			s := script.String()
			checkScript(t, s)
			toks, _ := psTokenize(s)
			quoted := 0
			for _, tok := range toks {
				if tok.kind == "string" && tok.text == name {
					quoted++
				}
			}
			clean := !strings.ContainsFunc(name, func(r rune) bool {
				return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
			})
			var command string
			for _, l := range strings.Split(s, "\n") {
				if strings.HasPrefix(l, "Set-ADUser 'sqlsvc_b' -Server 'emea.corp.test' -PrincipalsAllowedToDelegateToAccount ") {
					command = l
				}
			}
			switch {
			case clean && len(name) < 2000:
				// kept today, and the front end: each its own quoted string
				if quoted != 2 || command == "" {
					t.Errorf("the RBCD command does not carry the name twice as one quoted string (%d):\n%s", quoted, s)
				}
			case command != "":
				t.Errorf("an RBCD command was written with a name that cannot be quoted or reviewed:\n%s", command)
			case !strings.Contains(s, "# REFUSED"):
				t.Errorf("the RBCD command was not refused:\n%s", s)
			}
		})
	}
}

// checkTerminalSafe: the only control character in the output is the
// newline that ends its own lines; nothing a terminal would act on.
func checkTerminalSafe(t *testing.T, what, out string) {
	t.Helper()
	for i, r := range out {
		if r == '\n' {
			continue
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Cf, r) {
			t.Errorf("%s: raw %U at byte %d: %q", what, r, i, out[max(0, i-40):min(len(out), i+40)])
			return
		}
	}
}

// knownCommands are the commands the diagnosis package writes; every
// command line of the script must start with one of them.
var knownCommands = map[string]bool{
	"setspn": true, "dsacls": true, "w32tm": true, "throw": true,
	"set-aduser": true, "set-adcomputer": true, "set-adserviceaccount": true, "set-adaccountcontrol": true,
	"set-adaccountpassword": true, "enable-adaccount": true, "unlock-adaccount": true, "remove-adgroupmember": true,
	"add-dnsserverresourcerecorda": true, "add-dnsserverresourcerecordptr": true, "remove-dnsserverresourcerecord": true,
}

// checkScript tokenizes the fix script as PowerShell would (see
// psTokenize) and checks that every statement is one of the commands we
// write, with no way for a value to run code.
func checkScript(t *testing.T, script string) {
	t.Helper()
	checkTerminalSafe(t, "fix script", script)
	toks, err := psTokenize(script)
	if err != nil {
		t.Fatalf("fix script does not tokenize: %v", err)
	}
	var stmt []psToken
	flush := func() {
		defer func() { stmt = nil }()
		if len(stmt) == 0 {
			return
		}
		first := stmt[0]
		switch {
		case first.kind == "variable" && strings.EqualFold(first.text, "ErrorActionPreference"):
			if len(stmt) != 3 || stmt[1].text != "=" || stmt[2].kind != "string" {
				t.Errorf("unexpected statement %v", stmt)
			}
			return
		case first.kind != "word" || !knownCommands[strings.ToLower(first.text)]:
			t.Errorf("statement does not start with a known command: %v", stmt)
			return
		}
		for _, tok := range stmt[1:] {
			switch tok.kind {
			case "word", "string", "punct":
			case "variable":
				if v := strings.ToLower(tok.text); v != "true" && v != "false" && v != "null" {
					t.Errorf("statement reads variable $%s: %v", tok.text, stmt)
				}
			default:
				t.Errorf("statement holds a %s token %q: %v", tok.kind, tok.text, stmt)
			}
		}
	}
	for _, tok := range toks {
		switch tok.kind {
		case "comment":
		case "newline":
			flush()
		default:
			stmt = append(stmt, tok)
		}
	}
	flush()
}

// The server log (promslog, logfmt or JSON, through report.LogWriter as
// main sets it up) escapes every control or format character in a value.
func TestHostileNamesInLogs(t *testing.T) {
	for _, format := range []string{"logfmt", "json"} {
		var buf bytes.Buffer
		f := promslog.NewFormat()
		if err := f.Set(format); err != nil {
			t.Fatal(err)
		}
		logger := promslog.New(&promslog.Config{Writer: report.LogWriter(&buf), Format: f})
		for _, name := range hostileNames {
			logger.Info("linked server failed", "linked_server", name, "err", "Login failed: "+name)
		}
		checkTerminalSafe(t, format+" log", buf.String())
	}
}
