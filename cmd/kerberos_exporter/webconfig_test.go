package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/crypto/bcrypt"

	"github.com/kerberos-exporter/kerberos_exporter/config"
	"github.com/kerberos-exporter/kerberos_exporter/cycle"
)

// examples/web-config.yml, docs/security.md's recommended production setting,
// with its paths and hash filled in: the exporter then answers only over
// TLS and only with the password.
func TestExampleWebConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeSelfSigned(t, certFile, keyFile)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret-scrape"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../../examples/web-config.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfgText := strings.NewReplacer("/etc/kerberos_exporter/tls.crt", certFile, "/etc/kerberos_exporter/tls.key", keyFile, "REPLACE_WITH_BCRYPT_HASH", string(hash)).Replace(string(example))
	webCfgFile := filepath.Join(dir, "web-config.yml")
	if err := os.WriteFile(webCfgFile, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := web.Validate(webCfgFile); err != nil {
		t.Fatalf("example web config does not validate: %v", err)
	}

	logger := promslog.NewNopLogger()
	runner := cycle.NewRunner(&config.Config{SQLInstances: []config.SQLInstance{{Name: "sqla"}}}, logger)
	mux := newMux(runner, newReloader("", runner, logger), prometheus.NewRegistry(), "/metrics", logger, defaultProbeOptions(), defaultLandingOptions())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := newHTTPServer(mux, defaultServerTimeouts)
	systemd := false
	go web.ListenAndServe(srv, &web.FlagConfig{WebListenAddresses: &[]string{addr}, WebSystemdSocket: &systemd, WebConfigFile: &webCfgFile}, logger)
	defer srv.Close()

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(url, password string) (int, error) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if password != "" {
			req.SetBasicAuth("prometheus", password)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var code int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if code, err = get("https://"+addr+"/", "s3cret-scrape"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || code != http.StatusOK {
		t.Fatalf("with the password over TLS: %d %v, want 200", code, err)
	}
	for _, path := range []string{"/", "/metrics", "/probe?target=sqla"} {
		if code, err := get("https://"+addr+path, ""); err != nil || code != http.StatusUnauthorized {
			t.Errorf("%s without the password: %d %v, want 401", path, code, err)
		}
		if code, err := get("https://"+addr+path, "wrong"); err != nil || code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong password: %d %v, want 401", path, code, err)
		}
	}
	if code, err := get("http://"+addr+"/", "s3cret-scrape"); err == nil && code == http.StatusOK {
		t.Error("plain HTTP was answered")
	}
}

func writeSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kerberos-exporter-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}
