// Package world starts and describes the Active Directory test world of the integration
// tests: a throw-away Samba AD domain controller for realm CORP.TEST on 127.0.0.1 (DC1), a
// copy of it with its clock shifted on 127.0.0.2 (DC2), and the fixtures of
// testenv/samba/fixtures.sh (service accounts, SPNs, delegation, DNS records, keytabs).
//
// The world is made by testenv/samba/world.sh, which needs root and installs its Debian
// packages when missing. Start runs "world.sh up" once per process; the script is
// idempotent and serialised by a lock file, so parallel test packages share one world,
// which stays up after the tests (stop it with "world.sh down"). See testenv/README.md.
package world

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultDir is the state directory used when KERBEROS_TESTENV_DIR is not set.
const DefaultDir = "/tmp/kerberos-testenv"

// World describes a running AD test world. All paths are absolute.
type World struct {
	Dir    string // state directory, e.g. "/tmp/kerberos-testenv"
	Realm  string // "CORP.TEST"
	Domain string // DNS domain, "corp.test"
	BaseDN string // "DC=corp,DC=test"

	NetBIOS    string // NetBIOS domain name, "CORP"
	DCHostName string // "dc1.corp.test": the DC's name, also in its LDAPS certificate

	DC1     string        // "127.0.0.1": the healthy DC (LDAP 389, LDAPS 636, KDC 88, DNS 53)
	DC2     string        // "127.0.0.2": a copy of DC1's database with a shifted clock
	DC2Skew time.Duration // how far DC2's clock is ahead of the real one

	Krb5Conf       string // krb5.conf: kdc 127.0.0.1:88, no DNS lookups, kdc_timesync = 0
	Krb5ConfSkewed string // the same, pointing at DC2's KDC (127.0.0.2:88)
	CACert         string // PEM CA of the DCs' LDAPS certificate (SANs dc1.corp.test, 127.0.0.1, 127.0.0.2)

	SMBConf    string // DC1's smb.conf (samba-tool -s)
	SMBConfDC2 string // DC2's smb.conf

	AdminUser, AdminPassword string // "Administrator"
	ServicePassword          string // password of every fixture account but wrongacct ("Passw0rd!Svc1")
	WrongAcctPassword        string // wrongacct's own password ("Passw0rd!Wrong1"), see Password

	MonitorUser, MonitorPassword, MonitorKeytab string // "krbmon": the exporter's own identity, an ordinary user

	// Keytabs maps sAMAccountName (e.g. "sqlsvc_a", "SQLE$") to a keytab holding that
	// account's keys (AES256, AES128, RC4) under the principal <sAMAccountName>@CORP.TEST.
	// Tickets for the account's SPNs are encrypted with these keys: with gokrb5 set
	// service.KeytabPrincipal(sAMAccountName) when verifying them.
	Keytabs map[string]string

	// StartLog is what world.sh printed (timing lines included).
	StartLog string
}

var (
	once     sync.Once
	started  *World
	startErr error
)

// Start makes sure the world is up ("world.sh up", once per process) and returns it. It
// fails with an explanation, never skips: not root, packages that cannot be installed, a DC
// that does not start. The DCs keep running after the process exits.
func Start() (*World, error) {
	once.Do(func() { started, startErr = start() })
	return started, startErr
}

// Dir returns the state directory: $KERBEROS_TESTENV_DIR, or DefaultDir.
func Dir() string {
	if d := os.Getenv("KERBEROS_TESTENV_DIR"); d != "" {
		return d
	}
	return DefaultDir
}

// Script returns the path of testenv/samba/world.sh in this source tree.
func Script() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("world: cannot locate the source tree (runtime.Caller)")
	}
	p := filepath.Join(filepath.Dir(file), "..", "samba", "world.sh")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("world: %v", err)
	}
	return filepath.Clean(p), nil
}

func start() (*World, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("world: the AD test world needs root (samba binds ports 53, 88, 389 and " +
			"apt-get installs it); run the integration tests as root, as CI does")
	}
	script, err := Script()
	if err != nil {
		return nil, err
	}
	dir := Dir()
	logf, err := os.CreateTemp("", "kerberos-testenv-up-*.log")
	if err != nil {
		return nil, fmt.Errorf("world: %v", err)
	}
	defer os.Remove(logf.Name())
	defer logf.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, "up")
	cmd.Env = append(os.Environ(), "KERBEROS_TESTENV_DIR="+dir)
	// A file, not a pipe: the DCs run on as daemons and must not hold our output open.
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.WaitDelay = 10 * time.Second
	runErr := cmd.Run()
	out, _ := os.ReadFile(logf.Name())
	os.Stderr.Write(out)
	if runErr != nil {
		return nil, fmt.Errorf("world: %s up failed (%v); logs in %s/logs:\n%s", script, runErr, dir, out)
	}
	w, err := Load(dir)
	if err != nil {
		return nil, err
	}
	w.StartLog = string(out)
	return w, nil
}

// Load describes the world in dir from its world.env, without starting anything.
func Load(dir string) (*World, error) {
	envPath := filepath.Join(dir, "world.env")
	data, err := os.ReadFile(envPath)
	if err != nil {
		return nil, fmt.Errorf("world: %v (is the world up? testenv/samba/world.sh up)", err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("world: %s: bad line %q", envPath, line)
		}
		env[k] = v
	}
	need := func(k string) string {
		if v, ok := env[k]; ok && v != "" {
			return v
		}
		if err == nil {
			err = fmt.Errorf("world: %s has no %s", envPath, k)
		}
		return ""
	}
	w := &World{
		Dir:               need("DIR"),
		Realm:             need("REALM"),
		Domain:            need("DOMAIN"),
		BaseDN:            need("BASE_DN"),
		NetBIOS:           need("NETBIOS"),
		DCHostName:        need("DC_HOST"),
		DC1:               need("DC1"),
		DC2:               need("DC2"),
		Krb5Conf:          need("KRB5_CONF"),
		Krb5ConfSkewed:    need("KRB5_CONF_SKEWED"),
		CACert:            need("CA_CERT"),
		SMBConf:           need("SMB_CONF"),
		SMBConfDC2:        need("SMB_CONF_DC2"),
		AdminUser:         need("ADMIN_USER"),
		AdminPassword:     need("ADMIN_PASSWORD"),
		ServicePassword:   need("SVC_PASSWORD"),
		WrongAcctPassword: need("WRONGACCT_PASSWORD"),
		MonitorUser:       need("MONITOR_USER"),
		MonitorPassword:   need("MONITOR_PASSWORD"),
		MonitorKeytab:     need("MONITOR_KEYTAB"),
		Keytabs:           map[string]string{},
	}
	skew := need("DC2_SKEW_SECONDS")
	keytabDir := need("KEYTAB_DIR")
	if err != nil {
		return nil, err
	}
	secs, err := strconv.Atoi(skew)
	if err != nil {
		return nil, fmt.Errorf("world: %s: DC2_SKEW_SECONDS: %v", envPath, err)
	}
	w.DC2Skew = time.Duration(secs) * time.Second
	files, err := filepath.Glob(filepath.Join(keytabDir, "*.keytab"))
	if err != nil {
		return nil, fmt.Errorf("world: %v", err)
	}
	for _, f := range files {
		w.Keytabs[strings.TrimSuffix(filepath.Base(f), ".keytab")] = f
	}
	if len(w.Keytabs) == 0 {
		return nil, fmt.Errorf("world: no keytabs in %s", keytabDir)
	}
	return w, nil
}

// SambaTool runs samba-tool against DC1's local database (as system, "-s smb.conf"), e.g.
// SambaTool("spn", "delete", "MSSQLSvc/sqlb.corp.test", "sqlsvc_b"). Changes reach DC1 at
// once; DC2 is a copy made at start-up and does not see them. Tests that change a fixture
// must restore it (other test packages share the world and may run at the same time).
func (w *World) SambaTool(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append(append([]string{}, args...), "-s", w.SMBConf)
	cmd := exec.CommandContext(ctx, "samba-tool", full...)
	cmd.Env = append(os.Environ(), "KRB5_CONFIG="+w.Krb5Conf)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("samba-tool %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Password returns the password of a fixture account (sAMAccountName): ServicePassword for
// all of them except wrongacct, which has a password of its own so that its unsalted RC4 key
// differs from sqlsvc_d's; AdminPassword for Administrator.
func (w *World) Password(sam string) string {
	switch strings.ToLower(sam) {
	case "wrongacct":
		return w.WrongAcctPassword
	case "administrator":
		return w.AdminPassword
	}
	return w.ServicePassword
}

// DNSServer is DC1's DNS server (Samba's internal DNS, no forwarder): "127.0.0.1:53".
func (w *World) DNSServer() string { return w.DC1 + ":53" }

// KeytabAccounts lists the sAMAccountNames that have a keytab, sorted.
func (w *World) KeytabAccounts() []string {
	names := make([]string, 0, len(w.Keytabs))
	for n := range w.Keytabs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ForTest is Start for integration tests: it fails the test (never skips it)
// when the world cannot start, and skips only under -short.
func ForTest(t testing.TB) *World {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the Samba AD test world (skipped under -short)")
	}
	w, err := Start()
	if err != nil {
		t.Fatalf("starting the Samba AD test world: %v", err)
	}
	return w
}
