package e2e

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/kerberos-exporter/kerberos_exporter/internal/diagnosis"
)

var updateDocs = flag.Bool("update", false, "rewrite the generated documentation (docs/checks.md)")

// maxReadmeBytes keeps the README an introduction: the depth lives in docs/.
const maxReadmeBytes = 15_000

// pendingDocs are files the documentation links to that other work adds
// (the findings page's screenshot, the state directory, …). A link to one
// of them is accepted while it is missing; once it exists the entry must
// go, so that the list never hides a broken link for long.
var pendingDocs = map[string]bool{}

// generatedDocs are the files rendered from code, with their renderers.
var generatedDocs = map[string]func() string{
	"docs/checks.md": checksReference,
}

// TestDocsGenerated: the generated references are what the code renders
// now. Rewrite them with -update.
func TestDocsGenerated(t *testing.T) {
	root := repoRoot(t)
	for file, render := range generatedDocs {
		want := render()
		path := filepath.Join(root, filepath.FromSlash(file))
		if *updateDocs {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./e2e -run TestDocsGenerated -update)", err)
		}
		if string(got) != want {
			t.Errorf("%s is out of date with the code; run go test ./e2e -run TestDocsGenerated -update:\n%s", file, firstDifference(string(got), want))
		}
	}
}

// checksReference renders docs/checks.md from the registry of checks.
func checksReference() string {
	var b strings.Builder
	b.WriteString(`# Checks

<!-- Generated from internal/diagnosis/checks.go by "go test ./e2e -run TestDocsGenerated -update". Do not edit. -->

Every finding is one of these checks: its name is the ` + "`check`" + ` label of ` + "`kerberos_finding`" + `, its
severity the ` + "`severity`" + ` label, and what its ` + "`target`" + ` label names is in brackets after when it fires.
The alert column names the alert that fires for its findings ("(page)": an alert with severity ` + "`page`" + `);
each alert has a runbook in [runbooks/](runbooks/). How findings are judged is in
[diagnosis.md](diagnosis.md); the alerting rules are described in [alerting.md](alerting.md).

`)
	b.WriteString(diagnosis.CheckTable())
	b.WriteString("\n## Alerts and runbooks per check\n")
	for _, c := range diagnosis.Checks {
		fmt.Fprintf(&b, "\n### `%s`\n\n", c.Name)
		var alerts []string
		seen := map[string]bool{}
		for _, s := range c.Severities {
			a, as := c.AlertFor(s)
			item := fmt.Sprintf("%s findings → [%s](runbooks/%s.md) (%s)", s, a, a, as)
			if !seen[item] {
				seen[item] = true
				alerts = append(alerts, item)
			}
		}
		rule := c.SeverityRule
		if rule == "" {
			rule = strings.Join(severityNames(c.Severities), ", ")
		}
		fmt.Fprintf(&b, "- **Severity**: %s\n- **Fires when**: %s\n- **Alert**: %s\n", rule, c.Meaning, strings.Join(alerts, "; "))
	}
	b.WriteString("\n## Alerts no finding drives\n\nThe exporter's own health, and a trend that one collection cannot judge:\n\n")
	b.WriteString("| alert | severity | runbook |\n|---|---|---|\n")
	for _, o := range diagnosis.OtherAlerts {
		fmt.Fprintf(&b, "| %s | %s | [%s](runbooks/%s.md) |\n", o.Name, o.Severity, o.Name, o.Name)
	}
	return b.String()
}

// markdownFiles lists the repository's Markdown files, relative to root
// with forward slashes.
func markdownFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".md") {
			rel, _ := filepath.Rel(root, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

var (
	fenceLine  = regexp.MustCompile("^\\s*(```|~~~)")
	codeSpan   = regexp.MustCompile("`+[^`]*`+")
	inlineLink = regexp.MustCompile(`!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refLink    = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(\s|$)`)
	headingRe  = regexp.MustCompile(`^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	schemeRe   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// proseLines are a Markdown file's lines outside fenced code blocks, with
// their line numbers.
func proseLines(text string) (lines []string, numbers []int) {
	inFence := false
	for i, l := range strings.Split(text, "\n") {
		if fenceLine.MatchString(l) {
			inFence = !inFence
			continue
		}
		if !inFence {
			lines = append(lines, l)
			numbers = append(numbers, i+1)
		}
	}
	return lines, numbers
}

// links are the link targets of a Markdown file, outside code.
func links(text string) (targets []string, lineNos []int) {
	lines, numbers := proseLines(text)
	for i, l := range lines {
		l = codeSpan.ReplaceAllString(l, "")
		for _, m := range inlineLink.FindAllStringSubmatch(l, -1) {
			targets = append(targets, m[1])
			lineNos = append(lineNos, numbers[i])
		}
		if m := refLink.FindStringSubmatch(l); m != nil {
			targets = append(targets, m[1])
			lineNos = append(lineNos, numbers[i])
		}
	}
	return targets, lineNos
}

// headingAnchors are the #anchors GitHub makes for a Markdown file's
// headings: the heading's text, lower-cased, without punctuation, spaces
// turned into hyphens; a repeated one gets -1, -2, ….
func headingAnchors(text string) map[string]bool {
	anchors := map[string]bool{}
	count := map[string]int{}
	lines, _ := proseLines(text)
	for _, l := range lines {
		m := headingRe.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		slug := githubSlug(m[2])
		if n := count[slug]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			anchors[slug] = true
		}
		count[slug]++
	}
	return anchors
}

var mdLinkText = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)

func githubSlug(heading string) string {
	heading = mdLinkText.ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// TestDocsLinks: every relative link in the Markdown files points at a file
// that exists, and every #anchor at a heading of its file.
func TestDocsLinks(t *testing.T) {
	root := repoRoot(t)
	files := markdownFiles(t, root)
	if len(files) < 10 {
		t.Fatalf("found only %d Markdown files under %s", len(files), root)
	}
	anchorsOf := map[string]map[string]bool{}
	anchors := func(rel string) (map[string]bool, bool) {
		if a, ok := anchorsOf[rel]; ok {
			return a, true
		}
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return nil, false
		}
		anchorsOf[rel] = headingAnchors(string(data))
		return anchorsOf[rel], true
	}
	usedPending := map[string]bool{}
	checked := 0
	for _, file := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			t.Fatal(err)
		}
		targets, lineNos := links(string(data))
		for i, target := range targets {
			if schemeRe.MatchString(target) || strings.HasPrefix(target, "//") {
				continue // a web address: not checked here
			}
			checked++
			where := fmt.Sprintf("%s:%d", file, lineNos[i])
			path, anchor, _ := strings.Cut(target, "#")
			rel := file
			if path != "" {
				rel = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(file), filepath.FromSlash(path))))
				if strings.HasPrefix(rel, "../") || rel == ".." {
					t.Errorf("%s: link %q leaves the repository", where, target)
					continue
				}
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel))); err != nil {
					if pendingDocs[rel] {
						usedPending[rel] = true
						continue
					}
					t.Errorf("%s: link %q: %s does not exist", where, target, rel)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(rel, ".md") {
				t.Errorf("%s: link %q has an anchor into a file that is not Markdown", where, target)
				continue
			}
			a, _ := anchors(rel)
			if !a[anchor] {
				t.Errorf("%s: link %q: %s has no heading with the anchor #%s", where, target, rel, anchor)
			}
		}
	}
	if checked < 50 {
		t.Errorf("checked only %d relative links; has the link syntax changed?", checked)
	}
	for rel := range pendingDocs {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel))); err == nil {
			t.Errorf("%s exists now: remove it from pendingDocs in e2e/docs_test.go so that links to it are checked", rel)
		}
	}
}

// TestReadmeIsAnIntroduction: the README stays short; the depth is in docs/.
func TestReadmeIsAnIntroduction(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > maxReadmeBytes {
		t.Errorf("README.md is %d bytes; keep it under %d and move the depth into docs/", len(data), maxReadmeBytes)
	}
	text := string(data)
	for _, want := range []string{"make demo", "make test", "docs/img/landing.png", "docs/README.md", "```yaml"} {
		if !strings.Contains(text, want) {
			t.Errorf("README.md lacks %q", want)
		}
	}
	// Every page of docs/ is reachable from the index.
	index, err := os.ReadFile(filepath.Join(root, "docs", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(root, "docs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".md") && e.Name() != "README.md" && !strings.Contains(string(index), "("+e.Name()+")") {
			t.Errorf("docs/README.md does not link to docs/%s", e.Name())
		}
	}
}

// buildEnvironmentPhrases are remarks about where the project was built,
// which mean nothing to its users.
var buildEnvironmentPhrases = []string{"build environment", "this machine", "seeds/", "../shared", "seed 0"}

// TestDocsSpeakToUsers: no document talks about the machine the project
// was built on, or cites an article by a local file name.
func TestDocsSpeakToUsers(t *testing.T) {
	root := repoRoot(t)
	files := append(markdownFiles(t, root), "config.example.yml", "Dockerfile", "examples/kerberos_exporter.service",
		"examples/web-config.yml", "examples/kubernetes/kerberos-exporter.yaml")
	for _, file := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
		if err != nil {
			t.Fatal(err)
		}
		lower := strings.ToLower(string(data))
		for _, p := range buildEnvironmentPhrases {
			if i := strings.Index(lower, p); i >= 0 {
				t.Errorf("%s:%d: %q: the docs speak to users, not about the build", file, strings.Count(lower[:i], "\n")+1, p)
			}
		}
	}
}

// firstDifference shows where two texts part, with a few lines of each.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		if i < len(g) && i < len(w) && g[i] == w[i] {
			continue
		}
		line := func(l []string) string {
			if i < len(l) {
				return l[i]
			}
			return "(end of file)"
		}
		return fmt.Sprintf("line %d:\n  file: %s\n  code: %s", i+1, line(g), line(w))
	}
	return "(no difference)"
}

func severityNames(sevs []diagnosis.Severity) []string {
	out := make([]string, len(sevs))
	for i, s := range sevs {
		out[i] = string(s)
	}
	return out
}
