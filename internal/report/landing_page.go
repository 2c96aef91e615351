package report

// The landing page's markup, style and script. The style and the script
// are constants so that LandingCSP can allow exactly them by hash. The
// script only sorts, filters and shows existing elements: it never builds
// markup from text.

const landingHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kerberos_exporter{{if .Completed}}{{if .Summary.Critical}} — {{.Summary.Critical}} critical{{end}}{{end}}</title>
<style>{{.CSS}}</style>
</head>
<body>
<header class="page">
<h1>kerberos_exporter</h1>
<p>Whether Kerberos works for SQL Server and the services around it, and why not.</p>
<nav><a href="{{.MetricsPath}}">Metrics</a><a href="#causes">Causes</a><a href="#instances">Instances</a>{{if .Fleet}}<a href="#fleet">Fleet-wide</a>{{end}}</nav>
</header>
<main>
{{- if not .Completed}}
<div class="notice" id="pending"><strong>No collection has completed yet.</strong> The first cycle is running; reload this page in a moment.</div>
{{- else}}
{{- if .FirstCycle}}
<div class="notice first" id="first-cycle"><strong>First collection since the exporter started</strong> — a target that was still starting may show as failing, and nothing is known yet of how long a finding has been there. The next cycle confirms or clears it.</div>
{{- end}}
<section class="tiles" id="summary">
<a class="tile" href="#instances" data-filter=""><b>{{.Summary.Total}}</b>{{if .Services}}instances and services{{else}}instances{{end}}</a>
<a class="tile critical" href="#instances" data-filter="critical"><b>{{.Summary.Critical}}</b>with criticals</a>
<a class="tile warning" href="#instances" data-filter="warning"><b>{{.Summary.Warning}}</b>with warnings</a>
<a class="tile ok" href="#instances" data-filter="healthy"><b>{{.Summary.Healthy}}</b>healthy</a>
<a class="tile unreachable" href="#instances" data-filter="unreachable"><b>{{.Summary.Unreachable}}</b>unreachable</a>
<div class="tile wide"><span class="label">Causes</span>{{template "counts" .Summary.Causes}}{{if .Summary.NewCauses}} <span class="new">{{.Summary.NewCauses}} new in the last hour</span>{{end}}</span>
<span class="label">Findings</span>{{template "counts" .Summary.Findings}}</span>
<span class="label">Last collection</span><span><time id="when" datetime="{{.When}}" data-unix="{{.WhenUnix}}">{{.When}}</time> <span id="age"></span></span></div>
</section>
{{- if .Failed}}
<div class="notice failed" id="failed-collectors"><strong>Collectors that failed or did not finish</strong> — what they did not check is unknown until they do:
<ul>{{range .Failed}}{{if .Incomplete}}<li><code>{{.Name}}</code>: {{.Incomplete}}</li>{{end}}{{if not .Success}}<li><code>{{.Name}}</code>: {{.Error}}</li>{{end}}{{end}}</ul></div>
{{- end}}
{{- if not .Summary.Findings.Total}}
<div class="notice" id="no-findings"><strong>No findings.</strong> Kerberos works everywhere the exporter can see.</div>
{{- end}}
<section id="causes">
<h2>Causes — fix these first</h2>
{{- range .Causes}}
<article class="cause {{.Severity}}" id="{{.ID}}" data-cause="{{.Cause}}" data-severity="{{.Severity}}">
<h3><span class="sev">{{.Severity}}</span> {{.Summary}}{{template "seen" .Seen}}</h3>
<div class="meta"><code>{{.Cause}}</code> · fix on <b>{{.Subject}}</b>{{if .Instances}} · {{plural .Instances "instance" "instances"}}{{end}} · {{if eq (len .Affected) 1}}affects <code>{{index .Affected 0}}</code>{{else}}<details class="inline"><summary>{{plural (len .Affected) "affected target" "affected targets"}}</summary>{{range .Affected}}<code>{{.}}</code> {{end}}</details>{{end}}</div>
<p><span class="label">Fix:</span> {{.Fix}}</p>
{{- if .Detail}}
<details class="why"{{if $.Expand}} open{{end}}><summary>Why it matters</summary><p>{{.Detail}}</p></details>
{{- end}}
{{- if .Script}}
<details class="script"{{if $.Expand}} open{{end}}><summary>Script: {{plural (len .Script) "line" "lines"}} to review</summary><pre>{{range .Script}}{{scriptLine .}}
{{end}}</pre></details>
{{- end}}
<div class="links">{{if and .Runbook $.RunbookURLPrefix}}<a class="runbook" href="{{$.RunbookURLPrefix}}{{.Runbook}}.md">Runbook {{.Runbook}}</a>{{end}}
{{- if .Shown}} <span class="label">Instances (probe with debug log):</span>{{range .Shown}} {{template "probe" .}}{{end}}
{{- if .More}} <details class="inline more"><summary>{{len .More}} more</summary>{{range .More}}{{template "probe" .}} {{end}}</details>{{end}}{{end}}</div>
</article>
{{- else}}
<p class="healthy" id="no-causes">Nothing to fix.</p>
{{- end}}
</section>
{{- end}}
<section id="instances">
<h2>{{if .Services}}Instances and services{{else}}Instances{{end}}</h2>
<div class="controls" id="controls" hidden><input id="filter" type="search" placeholder="Filter: name, cause, SPN, account…" aria-label="Filter by text"> <select id="status-filter" aria-label="Filter by status"><option value="">every status</option><option value="problem">critical or warning</option><option value="critical">critical</option><option value="warning">warning</option><option value="healthy">healthy</option><option value="unreachable">unreachable</option></select> <span id="shown" aria-live="polite"></span></div>
<table id="instances-table"><colgroup><col class="w-name"><col class="w-st"><col class="w-n"><col class="w-n"><col class="w-n"><col class="w-causes"><col class="w-seen"><col></colgroup>
<thead><tr><th data-key="name" aria-sort="none"><button type="button">Name</button></th><th data-key="status" aria-sort="ascending"><button type="button">Status</button></th><th data-key="critical" class="n"><button type="button">Crit.</button></th><th data-key="warning" class="n"><button type="button">Warn.</button></th><th data-key="info" class="n"><button type="button">Info</button></th><th data-key="causes"><button type="button">Causes</button></th><th data-key="seen"><button type="button">First seen</button></th><th data-key="findings"><button type="button">Findings</button></th></tr></thead>
<tbody>
{{- range .Rows}}
<tr class="{{.Status}}" data-rank="{{.Rank}}" data-seen="{{.Seen.Unix}}"{{if .Unreachable}} data-unreachable{{end}}><td>{{if .Probe}}{{template "probe" .}}{{else}}{{.Name}} <small>{{.Kind}}</small>{{end}}</td><td><span class="st">{{if eq .Status "ok"}}healthy{{else}}{{.Status}}{{end}}</span>{{if .Unreachable}} <span class="st u">unreachable</span>{{end}}</td><td>{{with .Counts.Critical}}{{.}}{{end}}</td><td>{{with .Counts.Warning}}{{.}}{{end}}</td><td>{{with .Counts.Info}}{{.}}{{end}}</td><td>{{range $i, $c := .Causes}}{{if $i}}, {{end}}<a href="#{{$c.ID}}">{{$c.Label}}</a>{{end}}</td><td>{{template "seen" .Seen}}</td><td>{{if .Findings}}<details{{if $.Expand}} open{{end}}><summary>{{len .Findings}}</summary><ul>{{range .Findings}}{{template "finding" .}}{{end}}</ul></details>{{end}}</td></tr>
{{- end}}
</tbody>
</table>
</section>
{{- if .Fleet}}
<section id="fleet">
<h2>Fleet-wide findings <small>directory, domain controllers, accounts, users</small></h2>
<details{{if .Expand}} open{{end}}><summary>{{plural (len .Fleet) "finding" "findings"}}</summary><ul>{{range .Fleet}}{{template "finding" .}}{{end}}</ul></details>
</section>
{{- end}}
</main>
<footer>The commands shown are proposals to review: the exporter only reads Active Directory, DNS and SQL Server and never runs anything against them. <code>kerberos_exporter check --fix-script FILE</code> writes them all as one PowerShell script.</footer>
<script>{{.JS}}</script>
</body>
</html>
{{- define "counts"}}<span><span class="c critical">{{.Critical}} critical</span><span class="c warning">{{.Warning}} warning</span><span class="c info">{{.Info}} info</span>{{end}}
{{- define "seen"}}{{if .Known}}{{if .New}} <span class="new">new</span>{{else}} <span class="since">since {{.Since}}</span>{{end}}{{end}}{{end}}
{{- define "probe"}}{{if .Probe}}<a href="{{.ProbePath}}?target={{.Target}}&amp;debug=true">{{.Name}}</a>{{else}}{{.Name}}{{end}}{{end}}
{{- define "finding"}}<li class="{{.Severity}}"><b>{{.Severity}}</b> <code>{{.Check}}</code> {{.Summary}}{{with .Cause.ID}} <a href="#{{.}}">cause</a>{{end}}{{template "seen" .Seen}}</li>{{end}}
`

const landingCSS = `
:root{--critical:#b3261e;--warning:#9a5800;--info:#2f5d8a;--ok:#2e7d32;--line:#d9dde3;--muted:#5b6470}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#f6f7f9}
header.page{background:#1f2a37;color:#fff;padding:12px 28px}
header.page h1{margin:0;font-size:21px}
header.page p{margin:0 0 6px;color:#c9d1db}
header.page nav a{color:#fff;margin-right:16px}
main{max-width:1280px;margin:0 auto;padding:16px 28px 32px}
h2{font-size:18px;margin:22px 0 8px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h2 small{font-weight:normal;color:var(--muted);font-size:13px}
.tiles{display:flex;flex-wrap:wrap;gap:10px}
.tile{background:#fff;border:1px solid var(--line);border-top:4px solid var(--muted);border-radius:4px;padding:6px 14px;color:inherit;text-decoration:none;min-width:110px}
.tile b{display:block;font-size:26px;line-height:1.2}
.tile.critical{border-top-color:var(--critical)}.tile.critical b{color:var(--critical)}
.tile.warning{border-top-color:var(--warning)}.tile.warning b{color:var(--warning)}
.tile.ok{border-top-color:var(--ok)}.tile.unreachable{border-top-color:#6d4c9f}
.tile.wide{flex:1;min-width:320px;display:grid;grid-template-columns:auto 1fr;gap:2px 12px;align-content:center;font-size:14px}
.label{font-weight:600}
.c{margin-right:10px;font-weight:600}.c.critical{color:var(--critical)}.c.warning{color:var(--warning)}.c.info{color:var(--info)}
.new{background:#fde68a;color:#5c3d00;border-radius:3px;padding:0 6px;font-size:12px;font-weight:700;text-transform:uppercase;white-space:nowrap}
.since{color:var(--muted);font-size:12px;font-weight:normal}
.notice{background:#fff;border:1px solid var(--line);border-left:5px solid var(--info);padding:10px 16px;border-radius:4px;margin:12px 0}
.notice.failed{border-left-color:var(--warning)}.notice.first{border-left-color:#6d4c9f}
.notice ul{margin:6px 0 0;padding-left:20px}
.healthy{color:var(--ok)}
article.cause{background:#fff;border:1px solid var(--line);border-left:6px solid var(--info);border-radius:4px;padding:8px 16px;margin:10px 0}
article.cause.critical{border-left-color:var(--critical)}article.cause.warning{border-left-color:var(--warning)}
.cause h3{margin:0;font-size:16px}
.sev{text-transform:uppercase;font-size:12px;font-weight:700;letter-spacing:.04em;padding:1px 8px;border-radius:3px;color:#fff;background:var(--info);vertical-align:2px}
.critical .sev{background:var(--critical)}.warning .sev{background:var(--warning)}
.cause .meta{color:var(--muted);font-size:13px}
.cause p{margin:5px 0}
details.why p{margin:2px 0 4px 16px;color:#3a424c}
details.inline{display:inline}
details.inline>summary{display:inline}
details.inline>summary::after{content:" ▸"}details.inline[open]>summary::after{content:" ▾"}
details.inline code{margin-right:6px}
summary{cursor:pointer;color:#1a56a8}
pre{background:#1f2a37;color:#e6edf3;padding:8px 12px;border-radius:4px;overflow-x:auto;font-size:13px;margin:4px 0}
.links{font-size:14px}
.links a{margin-right:8px}.runbook{font-weight:600}
.controls{margin:6px 0 8px;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
.controls input{flex:1;max-width:420px;padding:5px 8px;font:inherit}
.controls select{padding:4px;font:inherit}
#shown{color:var(--muted);font-size:13px}
table{width:100%;table-layout:fixed;border-collapse:collapse;background:#fff;border:1px solid var(--line);font-size:14px}
th{position:sticky;top:0;background:#eef1f5;text-align:left;padding:0;border-bottom:2px solid var(--line)}
th button{all:unset;display:block;padding:6px 8px;cursor:pointer;font-weight:600}
th button:focus-visible{outline:2px solid #1a56a8}
th[aria-sort=ascending] button::after{content:" ▲"}th[aria-sort=descending] button::after{content:" ▼"}
.w-name{width:15%}.w-st{width:9em}.w-n{width:4.5em}.w-causes{width:22%}.w-seen{width:9em}
td{overflow-wrap:anywhere;padding:4px 8px;border-top:1px solid var(--line);vertical-align:top}
td:nth-child(3),td:nth-child(4),td:nth-child(5){text-align:right;font-variant-numeric:tabular-nums}
tr{border-left:5px solid transparent}
tr.critical{border-left-color:var(--critical)}tr.warning{border-left-color:var(--warning)}
tr.critical td:nth-child(3),tr.warning td:nth-child(4){font-weight:700}
.st{font-size:12px;font-weight:700;text-transform:uppercase}
.critical .st{color:var(--critical)}.warning .st{color:var(--warning)}.info .st{color:var(--info)}.ok .st{color:var(--ok)}.st.u{color:#6d4c9f}
td ul,#fleet ul{margin:4px 0;padding-left:18px}
li.critical b{color:var(--critical)}li.warning b{color:var(--warning)}li.info b{color:var(--info)}
li b{font-size:11px;text-transform:uppercase}li code{font-size:12px;color:var(--muted)}
small{color:var(--muted)}
footer{max-width:1280px;margin:0 auto;padding:0 28px 28px;color:var(--muted);font-size:13px}
`

const landingJS = `
(function () {
  "use strict";
  // A link to an element inside a collapsed list opens the list.
  function openTarget() {
    var id = "";
    // A malformed escape (#%E0) names no element; uncaught, it would stop
    // the whole script.
    try { id = decodeURIComponent(location.hash.slice(1)); } catch (e) { return; }
    var el = id ? document.getElementById(id) : null;
    for (; el; el = el.parentElement) {
      if (el.tagName === "DETAILS") { el.open = true; }
    }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();

  // How old the page's collection is, kept current while it stays open.
  var when = document.getElementById("when"), age = document.getElementById("age");
  if (when && age) {
    var at = Number(when.getAttribute("data-unix")) * 1000;
    var tick = function () {
      var m = Math.floor((Date.now() - at) / 60000);
      age.textContent = m < 1 ? "(less than a minute ago)" : m < 120 ? "(" + m + " min ago)" : m < 2880 ? "(" + Math.floor(m / 60) + " h ago)" : "(" + Math.floor(m / 1440) + " days ago)";
    };
    tick();
    setInterval(tick, 30000);
  }

  var table = document.getElementById("instances-table");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var text = rows.map(function (r) { return r.textContent.toLowerCase(); });
  rows.forEach(function (r, i) { r.setAttribute("data-i", i); });
  var filter = document.getElementById("filter"), status = document.getElementById("status-filter");
  var shown = document.getElementById("shown");
  document.getElementById("controls").hidden = false;

  function num(r, col) { return Number(r.cells[col].firstChild ? r.cells[col].textContent : 0) || 0; }
  var keys = {
    name: function (r) { return r.cells[0].textContent.toLowerCase(); },
    status: function (r) { return Number(r.getAttribute("data-rank")); },
    critical: function (r) { return num(r, 2); },
    warning: function (r) { return num(r, 3); },
    info: function (r) { return num(r, 4); },
    causes: function (r) { return r.cells[5].getElementsByTagName("a").length; },
    seen: function (r) { return Number(r.getAttribute("data-seen")); },
    findings: function (r) { return num(r, 2) + num(r, 3) + num(r, 4); }
  };
  // Counts and first sightings sort largest or newest first on the first click.
  var descFirst = {critical: 1, warning: 1, info: 1, causes: 1, seen: 1, findings: 1};
  var sortKey = "status", asc = true;

  function sortBy(key) {
    asc = key === sortKey ? !asc : !descFirst[key];
    sortKey = key;
    var f = keys[key], dir = asc ? 1 : -1;
    var vals = rows.map(function (r) { return f(r); });
    var order = rows.map(function (r, i) { return i; });
    order.sort(function (a, b) {
      var x = vals[a], y = vals[b];
      if (key === "seen" && (x === 0) !== (y === 0)) { return x === 0 ? 1 : -1; }
      if (x < y) { return -dir; }
      if (x > y) { return dir; }
      return Number(rows[a].getAttribute("data-i")) - Number(rows[b].getAttribute("data-i"));
    });
    var sorted = order.map(function (i) { return rows[i]; });
    var ordered = order.map(function (i) { return text[i]; });
    rows = sorted;
    text = ordered;
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) { frag.appendChild(r); });
    body.appendChild(frag);
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.setAttribute("aria-sort", th.getAttribute("data-key") === key ? (asc ? "ascending" : "descending") : "none");
    });
  }

  function matches(r, s) {
    var c = r.className;
    switch (s) {
    case "": return true;
    case "problem": return c === "critical" || c === "warning";
    case "healthy": return c === "info" || c === "ok";
    case "unreachable": return r.hasAttribute("data-unreachable");
    default: return c === s;
    }
  }

  function apply() {
    var q = filter.value.trim().toLowerCase(), s = status.value, n = 0;
    rows.forEach(function (r, i) {
      var show = matches(r, s) && (q === "" || text[i].indexOf(q) >= 0);
      r.hidden = !show;
      if (show) { n++; }
    });
    shown.textContent = n + " of " + rows.length + " shown";
  }

  Array.prototype.forEach.call(table.tHead.getElementsByTagName("button"), function (b) {
    b.addEventListener("click", function () { sortBy(b.parentElement.getAttribute("data-key")); });
  });
  filter.addEventListener("input", apply);
  status.addEventListener("change", apply);
  Array.prototype.forEach.call(document.querySelectorAll("[data-filter]"), function (a) {
    a.addEventListener("click", function () {
      status.value = a.getAttribute("data-filter");
      filter.value = "";
      apply();
    });
  });
  apply();
})();
`
