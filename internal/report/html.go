package report

import (
	"html/template"
	"io"
	"time"
)

// Page is what the landing page links to.
type Page struct {
	MetricsPath string
	ProbePath   string
}

// WriteHTML writes the landing page: the findings per instance, with no
// external assets (inline CSS, no script), and links to the metrics and to
// a probe of each instance.
func (r *Report) WriteHTML(w io.Writer, p Page) error {
	// html/template makes names inert as markup; escaping control
	// characters as well keeps the page clean when read with curl.
	r = r.escaped()
	var instances []string
	for _, g := range r.Groups {
		if g.Kind == KindSQLInstance {
			instances = append(instances, g.Name)
		}
	}
	return landingTmpl.Execute(w, struct {
		*Report
		Page
		Instances []string
		Failed    []Collector
		When      string
	}{r, p, instances, r.FailedCollectors(), r.Generated.UTC().Format(time.RFC3339)})
}

var landingTmpl = template.Must(template.New("landing").Funcs(template.FuncMap{"scriptLine": scriptLine}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kerberos_exporter</title>
<style>
:root { --critical: #b3261e; --warning: #a15c00; --info: #2f5d8a; --ok: #2e7d32; --line: #d9dde3; --muted: #5b6470; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; background: #f6f7f9; }
header.page { background: #1f2a37; color: #fff; padding: 16px 32px; }
header.page h1 { margin: 0; font-size: 22px; }
header.page p { margin: 2px 0 8px; color: #c9d1db; }
header.page nav a { color: #fff; margin-right: 16px; }
main { max-width: 1100px; margin: 0 auto; padding: 20px 32px 40px; }
.summary { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; margin-bottom: 16px; }
.pill { padding: 3px 10px; border-radius: 999px; font-weight: 600; color: #fff; font-size: 13px; }
.pill.critical { background: var(--critical); } .pill.warning { background: var(--warning); } .pill.info { background: var(--info); } .pill.ok { background: var(--ok); }
.when { color: var(--muted); font-size: 13px; }
.notice { background: #fff; border: 1px solid var(--line); border-left: 5px solid var(--info); padding: 12px 16px; border-radius: 4px; margin: 12px 0; }
.notice.failed { border-left-color: var(--warning); }
.notice ul { margin: 6px 0 0; padding-left: 20px; }
section.group { margin-top: 26px; }
section.group h2 { font-size: 18px; margin: 0 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; }
section.group h2 .counts { font-size: 13px; font-weight: normal; color: var(--muted); }
section.group h2 a { font-size: 13px; font-weight: normal; margin-left: auto; }
.healthy { color: var(--ok); margin: 4px 0; }
article.finding { background: #fff; border: 1px solid var(--line); border-left: 6px solid var(--info); border-radius: 4px; padding: 10px 16px; margin: 10px 0; }
article.finding.critical { border-left-color: var(--critical); } article.finding.warning { border-left-color: var(--warning); }
.finding .head { display: flex; gap: 10px; align-items: baseline; flex-wrap: wrap; }
.sev { text-transform: uppercase; font-size: 12px; font-weight: 700; letter-spacing: .04em; padding: 1px 8px; border-radius: 3px; color: #fff; background: var(--info); }
.critical .sev { background: var(--critical); } .warning .sev { background: var(--warning); }
.finding .title { font-weight: 600; font-size: 16px; }
.finding .meta { color: var(--muted); font-size: 13px; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.finding p { margin: 6px 0; }
.finding .label { font-weight: 600; }
pre.script { background: #1f2a37; color: #e6edf3; padding: 10px 12px; border-radius: 4px; overflow-x: auto; font-size: 13px; margin: 6px 0 4px; }
footer { max-width: 1100px; margin: 0 auto; padding: 0 32px 30px; color: var(--muted); font-size: 13px; }
</style>
</head>
<body>
<header class="page">
<h1>kerberos_exporter</h1>
<p>Whether Kerberos works for SQL Server and the services around it, and why not.</p>
<nav><a href="{{.MetricsPath}}">Metrics</a>{{range .Instances}}<a href="{{$.ProbePath}}?target={{.}}">Probe {{.}}</a>{{end}}</nav>
</header>
<main>
{{- if not .Completed}}
<div class="notice" id="pending"><strong>No collection has completed yet.</strong> The first cycle is running; reload this page in a moment.</div>
{{- else}}
<div class="summary" id="summary">
{{- if eq .Counts.Total 0}}<span class="pill ok">no findings</span>{{end}}
{{- if .Counts.Critical}}<span class="pill critical">{{.Counts.Critical}} critical</span>{{end}}
{{- if .Counts.Warning}}<span class="pill warning">{{.Counts.Warning}} warning</span>{{end}}
{{- if .Counts.Info}}<span class="pill info">{{.Counts.Info}} info</span>{{end}}
<span class="when">Last collection finished {{.When}}</span>
</div>
{{- if .Failed}}
<div class="notice failed" id="failed-collectors"><strong>Collectors that failed</strong> — their checks are silent until they succeed:
<ul>{{range .Failed}}{{if .Incomplete}}<li><code>{{.Name}}</code>: {{.Incomplete}}</li>{{end}}{{if not .Success}}<li><code>{{.Name}}</code>: {{.Error}}</li>{{end}}{{end}}</ul></div>
{{- end}}
{{- if eq .Counts.Total 0}}
<div class="notice" id="no-findings"><strong>No findings.</strong> Kerberos works everywhere the exporter can see.</div>
{{- end}}
{{- range .Groups}}
<section class="group">
<h2>{{.Title}}{{if .Findings}} <span class="counts">{{len .Findings}} {{if eq (len .Findings) 1}}finding{{else}}findings{{end}}</span>{{end}}
{{- if eq .Kind "sql_instance"}}<a href="{{$.ProbePath}}?target={{.Name}}">probe</a>{{end}}</h2>
{{- range .Findings}}
<article class="finding {{.Severity}}" data-check="{{.Check}}" data-severity="{{.Severity}}">
<div class="head"><span class="sev">{{.Severity}}</span><span class="title">{{.Summary}}</span></div>
<div class="meta">{{.Check}} · {{.Target}}</div>
<p>{{.Detail}}</p>
<p><span class="label">Fix:</span> {{.Fix}}</p>
{{- if .Script}}
<pre class="script">{{range .Script}}{{scriptLine .}}
{{end}}</pre>
{{- end}}
</article>
{{- else}}
<p class="healthy">No findings.</p>
{{- end}}
</section>
{{- end}}
{{- end}}
</main>
<footer>The commands shown are proposals to review: the exporter only reads Active Directory, DNS and SQL Server and never runs anything against them. <code>kerberos_exporter check --fix-script FILE</code> writes them all as one PowerShell script.</footer>
</body>
</html>
`))
