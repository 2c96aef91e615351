package e2e

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kerberos-exporter/kerberos_exporter/config"
)

// binaryFlags are the exporter's flags and their defaults ("" when none
// is shown), read from its --help-long, which lists the subcommands' too.
func binaryFlags(t *testing.T, bin string) map[string]string {
	t.Helper()
	out, err := exec.Command(bin, "--help-long").CombinedOutput()
	if err != nil {
		t.Fatalf("--help-long: %v\n%s", err, out)
	}
	flags := map[string]string{}
	re := regexp.MustCompile(`(?m)^\s+(?:-\w, )?--(\[no-\])?([a-z][a-z0-9.-]*)(?:=("[^"]*"|\S+))?`)
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		name := m[2]
		if name == "help" || name == "help-long" || name == "help-man" {
			continue
		}
		flags[name] = strings.Trim(m[3], `"`)
	}
	if len(flags) < 15 {
		t.Fatalf("read only %d flags from --help-long:\n%s", len(flags), out)
	}
	return flags
}

// flagRow is a row of docs/running.md's flags table: flags, default.
var flagRow = regexp.MustCompile("^\\|\\s*(`--[^|]*)\\|\\s*([^|]*?)\\s*\\|")

// TestFlagsDocumented: docs/running.md lists every flag of the binary and
// no other, each with the default the binary shows.
func TestFlagsDocumented(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the exporter")
	}
	flags := binaryFlags(t, buildExporter(t))
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "running.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	collectorRow := ""
	for _, l := range strings.Split(string(data), "\n") {
		m := flagRow.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		names := regexp.MustCompile("`--([a-zA-Z0-9.-]+)`").FindAllStringSubmatch(m[1], -1)
		if strings.Contains(m[1], "--collector.NAME") {
			collectorRow = l
			continue
		}
		for _, n := range names {
			name := n[1]
			documented[name] = true
			if _, ok := flags[name]; !ok {
				t.Errorf("docs/running.md documents --%s, which the binary does not have", name)
			}
		}
		if len(names) == 1 {
			if lit := singleLiteral.FindStringSubmatch(m[2]); lit != nil && lit[1] != flags[names[0][1]] {
				t.Errorf("docs/running.md says --%s defaults to %s; the binary says %q", names[0][1], lit[1], flags[names[0][1]])
			}
		}
	}
	for name := range flags {
		if c, ok := strings.CutPrefix(name, "collector."); ok {
			if !strings.Contains(collectorRow, "`"+c+"`") {
				t.Errorf("docs/running.md's --collector.NAME row does not name the collector %s", c)
			}
			continue
		}
		if !documented[name] {
			t.Errorf("docs/running.md has no row for --%s", name)
		}
	}
}

// TestKubernetesExample checks examples/kubernetes/kerberos-exporter.yaml:
// the container runs locked down, probes /-/healthy on the port it
// listens on, mounts the Secret so that the exporter accepts it, and the
// binary, given the container's arguments, loads the ConfigMap's
// configuration with the mounted files in place.
func TestKubernetesExample(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "examples", "kubernetes", "kerberos-exporter.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var configMap, deployment, service map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		switch doc["kind"] {
		case "ConfigMap":
			configMap = doc
		case "Deployment":
			deployment = doc
		case "Service":
			service = doc
		default:
			t.Errorf("unexpected kind %v", doc["kind"])
		}
	}
	if configMap == nil || deployment == nil || service == nil {
		t.Fatal("the example needs a ConfigMap, a Deployment and a Service")
	}

	pod := dig(t, deployment, "spec", "template", "spec")
	podSec := dig(t, pod, "securityContext")
	if podSec["runAsNonRoot"] != true {
		t.Error("pod securityContext: runAsNonRoot is not true")
	}
	if uid, _ := podSec["runAsUser"].(int); uid == 0 {
		t.Error("pod securityContext: runAsUser is root or unset")
	}
	fsGroup, _ := podSec["fsGroup"].(int)
	if fsGroup == 0 {
		t.Error("pod securityContext: no fsGroup, so the Secret's group cannot be the exporter's")
	}
	if pod["automountServiceAccountToken"] != false {
		t.Error("the pod mounts a service account token it does not need")
	}
	containers, _ := pod["containers"].([]any)
	if len(containers) != 1 {
		t.Fatalf("want one container, got %d", len(containers))
	}
	c := containers[0].(map[string]any)
	sec := dig(t, c, "securityContext")
	for key, want := range map[string]any{"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false} {
		if sec[key] != want {
			t.Errorf("container securityContext: %s is %v, want %v", key, sec[key], want)
		}
	}
	if drop, _ := dig(t, sec, "capabilities")["drop"].([]any); len(drop) != 1 || drop[0] != "ALL" {
		t.Errorf("container securityContext: capabilities.drop is %v, want [ALL]", drop)
	}

	var args []string
	for _, a := range c["args"].([]any) {
		args = append(args, a.(string))
	}
	listenPort := ""
	configFile := ""
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--web.listen-address="); ok {
			_, listenPort, _ = net.SplitHostPort(v)
		}
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			configFile = v
		}
	}
	if listenPort == "" || configFile == "" {
		t.Fatalf("the container's args name no --web.listen-address or --config.file: %v", args)
	}
	portName := ""
	for _, p := range c["ports"].([]any) {
		p := p.(map[string]any)
		if itoa(p["containerPort"]) == listenPort {
			portName, _ = p["name"].(string)
		}
	}
	if portName == "" {
		t.Errorf("no named containerPort %s, where the exporter listens", listenPort)
	}
	for _, probe := range []string{"livenessProbe", "readinessProbe"} {
		get := dig(t, dig(t, c, probe), "httpGet")
		if get["path"] != "/-/healthy" || (get["port"] != portName && itoa(get["port"]) != listenPort) {
			t.Errorf("%s asks %v on port %v, want /-/healthy on %s", probe, get["path"], get["port"], portName)
		}
	}
	svcPorts, _ := dig(t, service, "spec")["ports"].([]any)
	if len(svcPorts) == 0 || (svcPorts[0].(map[string]any)["targetPort"] != portName && itoa(svcPorts[0].(map[string]any)["targetPort"]) != listenPort) {
		t.Errorf("the Service does not target the container's port %s: %v", portName, svcPorts)
	}

	// Mount the volumes under a temporary directory, as the kubelet would,
	// and point the configuration and the arguments at them.
	dir := t.TempDir()
	mountOf := map[string]string{}
	for _, m := range c["volumeMounts"].([]any) {
		m := m.(map[string]any)
		mountOf[m["name"].(string)] = m["mountPath"].(string)
		if m["readOnly"] != true && m["name"] != "state" {
			t.Errorf("volume %v is not mounted read-only", m["name"])
		}
	}
	local := func(p string) string { return filepath.Join(dir, filepath.FromSlash(p)) }
	configData := dig(t, configMap, "data")
	for _, v := range pod["volumes"].([]any) {
		v := v.(map[string]any)
		name := v["name"].(string)
		mount, ok := mountOf[name]
		if !ok {
			t.Errorf("volume %s is not mounted", name)
			continue
		}
		if err := os.MkdirAll(local(mount), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case v["configMap"] != nil:
			for key, value := range configData {
				if err := os.WriteFile(filepath.Join(local(mount), key), []byte(value.(string)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		case v["secret"] != nil:
			s := v["secret"].(map[string]any)
			mode, _ := s["defaultMode"].(int)
			if mode == 0 || mode&0o007 != 0 || mode&0o040 == 0 {
				t.Errorf("secret volume %s: defaultMode %#o; want group-readable and nothing for others (0440)", name, mode)
			}
			items, _ := s["items"].([]any)
			if len(items) == 0 {
				t.Errorf("secret volume %s lists no items", name)
			}
			for _, it := range items {
				path := it.(map[string]any)["path"].(string)
				if err := os.WriteFile(filepath.Join(local(mount), path), []byte("placeholder\n"), os.FileMode(mode)); err != nil {
					t.Fatal(err)
				}
			}
		case name == "state" && (v["emptyDir"] != nil || v["persistentVolumeClaim"] != nil):
			// --state.directory: written by the exporter, rewritten below.
		default:
			t.Errorf("volume %s is neither the ConfigMap, the Secret nor the state directory", name)
		}
	}
	cfgPath := local(configFile)
	cfgText, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatalf("--config.file=%s is not in a mounted volume: %v", configFile, err)
	}
	rewritten := string(cfgText)
	for _, mount := range mountOf {
		rewritten = strings.ReplaceAll(rewritten, mount+"/", local(mount)+"/")
	}
	if err := os.WriteFile(cfgPath, []byte(rewritten), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("the ConfigMap's configuration does not load with the mounted files:\n%v", err)
	}
	if len(cfg.Warnings) > 0 {
		t.Errorf("the ConfigMap's configuration loads with warnings: %v", cfg.Warnings)
	}

	if testing.Short() {
		return
	}
	// The binary accepts the container's arguments as they are.
	bin := buildExporter(t)
	var run []string
	for _, a := range args {
		if strings.HasPrefix(a, "--config.file=") {
			a = "--config.file=" + cfgPath
		}
		if dir, ok := strings.CutPrefix(a, "--state.directory="); ok {
			if _, mounted := mountOf["state"]; !mounted || mountOf["state"] != dir {
				t.Errorf("--state.directory=%s is not the state volume's mount %q", dir, mountOf["state"])
			}
			a = "--state.directory=" + local(dir)
		}
		run = append(run, a)
	}
	out, err := exec.Command(bin, append(run, "--config.check")...).CombinedOutput()
	if err != nil {
		t.Errorf("kerberos_exporter %s --config.check: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// dig walks nested YAML mappings, failing the test where one is missing.
func dig(t *testing.T, m map[string]any, keys ...string) map[string]any {
	t.Helper()
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("the Kubernetes example lacks %s", strings.Join(keys, "."))
		}
		m = next
	}
	return m
}

func itoa(v any) string {
	if n, ok := v.(int); ok {
		return strconv.Itoa(n)
	}
	s, _ := v.(string)
	return s
}
