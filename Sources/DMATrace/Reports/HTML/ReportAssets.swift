/// The report's template, stylesheet and script, kept in the binary so the
/// tool writes one self-contained file from anywhere it is installed.
enum ReportAssets {
    static let template = #"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{{generator}}">
<title>{{title}}</title>
<style>{{{stylesheet}}}</style>
</head>
<body>
<header class="page-header">
  <h1>{{title}}</h1>
  <div class="verdict {{#verdict.clean}}clean{{/verdict.clean}}{{^verdict.clean}}dirty{{/verdict.clean}}">
    <p class="headline">{{verdict.headline}}</p>
    <p class="counts">
      <span class="badge error">{{verdict.errors}} error(s)</span>
      <span class="badge warning">{{verdict.warnings}} warning(s)</span>
      <span class="badge note">{{verdict.notes}} note(s)</span>
    </p>
    {{#verdict.hasRules}}
    <ul class="rule-counts">
      {{#verdict.rules}}<li><a href="#rule-{{id}}"><span class="dot {{severity}}"></span>{{id}}</a> <span class="n">{{count}}</span></li>{{/verdict.rules}}
    </ul>
    {{/verdict.hasRules}}
  </div>
</header>
<main>
<section id="trace">
  <h2>Trace</h2>
  <dl class="facts">
    {{#facts}}<dt>{{label}}</dt><dd>{{value}}</dd>{{/facts}}
  </dl>
</section>

<section id="devices">
  <h2>Devices</h2>
  {{#devices}}
  <article class="device">
    <h3>{{name}} <span class="path">{{path}}</span> <span class="coherence">{{coherence}}</span></h3>
    <dl class="counts">
      {{#counts}}<div><dt>{{label}}</dt><dd>{{value}}</dd></div>{{/counts}}
    </dl>
    {{#hasChart}}{{#chart}}
    <figure class="timeline">
      <svg viewBox="0 0 {{width}} {{height}}" width="100%" role="img" aria-label="live mappings and coherent allocations of {{name}} over time">
        <line class="axis" x1="0" y1="{{plotBottom}}" x2="{{width}}" y2="{{plotBottom}}"></line>
        <polyline class="mappings" points="{{mappings}}"></polyline>
        <polyline class="allocations" points="{{allocations}}"></polyline>
        {{#marks}}<circle class="mark {{cls}}" cx="{{x}}" cy="{{y}}" r="4"><title>{{title}}</title></circle>{{/marks}}
        {{#ticks}}<text class="tick" x="{{x}}" y="128">{{label}}</text>{{/ticks}}
      </svg>
      <figcaption>
        <span class="key mappings"></span> live streaming mappings (peak {{maxMappings}}, {{peakBytes}})
        <span class="key allocations"></span> live coherent allocations (peak {{maxAllocations}})
        <span class="key marks"></span> findings; one step = {{bucketSeconds}} s
      </figcaption>
    </figure>
    {{/chart}}{{/hasChart}}
    {{#hasLimitations}}
    <details class="limits"><summary>What the tool assumed and cannot show for {{name}}</summary>
      <ul>{{#limitations}}<li>{{.}}</li>{{/limitations}}</ul>
    </details>
    {{/hasLimitations}}
  </article>
  {{/devices}}
</section>

<section id="findings">
  <h2>Findings</h2>
  {{#hasFindings}}
  <form class="filters" hidden>
    <fieldset><legend>Severity</legend>
      {{#severities}}<label><input type="checkbox" name="severity" value="{{.}}" checked> {{.}}</label>{{/severities}}
    </fieldset>
    <label>Rule <select name="rule"><option value="">all rules</option>{{#ruleIDs}}<option>{{.}}</option>{{/ruleIDs}}</select></label>
    <label>Sort by <select name="sort"><option value="severity">severity</option><option value="time">time</option></select></label>
  </form>
  <div class="finding-list">
  {{#findings}}
  <article class="finding {{severity}}" id="{{anchor}}" data-severity="{{severity}}" data-rank="{{severityRank}}" data-rule="{{rule}}" data-time="{{timeValue}}">
    <header>
      <span class="badge {{severity}}">{{severity}}</span>
      <a class="rule" href="#rule-{{rule}}">{{rule}}</a>
      {{#occurrences}}<span class="occurrences">{{.}}</span>{{/occurrences}}
      <span class="where">{{device}} · {{time}} · cpu {{cpu}} · {{task}}</span>
    </header>
    <p class="message">{{message}}</p>
    {{#caveats}}<p class="caveat">{{.}}</p>{{/caveats}}
    {{#location}}<p class="location">at {{#href}}<a href="{{href}}">{{text}}</a>{{/href}}{{^href}}{{text}}{{/href}}</p>{{/location}}
    {{#marker}}<p class="marker">during marker “{{.}}”</p>{{/marker}}
    {{#hasHistory}}
    <details open><summary>Buffer history</summary>
      <table class="history">
        <thead><tr><th>time (s)</th><th>cpu</th><th>task</th><th>event</th><th>details</th></tr></thead>
        <tbody>{{#history}}<tr><td>{{time}}</td><td>{{cpu}}</td><td>{{task}}</td><td>{{event}}</td><td>{{details}}</td></tr>{{/history}}</tbody>
      </table>
    </details>
    {{/hasHistory}}
    {{#hasStack}}
    <details><summary>Kernel stack</summary><pre class="stack">{{#stack}}{{.}}
{{/stack}}</pre></details>
    {{/hasStack}}
    <p class="fingerprint">fingerprint {{fingerprint}}</p>
  </article>
  {{/findings}}
  </div>
  {{#omitted}}<p class="omitted">{{omitted}} more finding(s) are not shown here; use <code>dma-trace analyze --format json</code> for all of them.</p>{{/omitted}}
  {{/hasFindings}}
  {{^hasFindings}}<p class="none">No findings.</p>{{/hasFindings}}
</section>

{{#hasRuleDocs}}
<section id="rules">
  <h2>Rule reference</h2>
  {{#ruleDocs}}
  <article class="rule-doc" id="rule-{{id}}">
    <h3>{{id}} <span class="badge {{severity}}">{{severity}} by default</span></h3>
    <p class="summary">{{name}}: {{summary}}</p>
    <details><summary>Meaning, consequences, fixes, limits</summary><pre class="doc">{{text}}</pre></details>
  </article>
  {{/ruleDocs}}
</section>
{{/hasRuleDocs}}
</main>
<footer>Generated by {{generator}}. This page loads nothing from the network.</footer>
<script>{{{script}}}</script>
</body>
</html>
"""#

    static let indexTemplate = #"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dma-trace audit</title>
<style>{{{stylesheet}}}</style>
</head>
<body>
<header class="page-header"><h1>dma-trace audit</h1></header>
<main>
<section>
<table class="index">
  <thead><tr><th>trace</th><th>kernel</th><th>errors</th><th>warnings</th><th>notes</th></tr></thead>
  <tbody>
  {{#entries}}
  <tr>
    <td>{{#href}}<a href="{{href}}">{{trace}}</a>{{/href}}{{^href}}{{trace}}{{/href}}{{#problem}}<div class="caveat">{{.}}</div>{{/problem}}</td>
    <td>{{kernel}}</td><td class="n error">{{errors}}</td><td class="n warning">{{warnings}}</td><td class="n note">{{notes}}</td>
  </tr>
  {{/entries}}
  </tbody>
</table>
</section>
</main>
<footer>Generated by {{generator}}. This page loads nothing from the network.</footer>
</body>
</html>
"""#

    static let stylesheet = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #ffffff; --panel: #f6f8fa;
        --error: #cf222e; --warning: #9a6700; --note: #0969da; --ok: #1a7f37;
        --map: #8250df; --alloc: #1a7f37; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
main, .page-header, footer { max-width: 1100px; margin: 0 auto; padding: 0 24px; }
.page-header { padding-top: 24px; }
h1 { font-size: 22px; margin: 0 0 12px; word-break: break-all; }
h2 { font-size: 18px; border-bottom: 1px solid var(--line); padding-bottom: 4px; margin-top: 32px; }
h3 { font-size: 15px; margin: 0 0 8px; }
code, pre, .where, .fingerprint, table.history td, .facts dd { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.verdict { border: 1px solid var(--line); border-left: 6px solid var(--ok); border-radius: 6px; padding: 12px 16px; background: var(--panel); }
.verdict.dirty { border-left-color: var(--error); }
.headline { font-size: 16px; font-weight: 600; margin: 0 0 6px; }
.counts { margin: 0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; background: var(--muted); }
.badge.error { background: var(--error); } .badge.warning { background: var(--warning); } .badge.note { background: var(--note); }
.rule-counts { list-style: none; padding: 0; margin: 8px 0 0; display: flex; flex-wrap: wrap; gap: 6px 16px; }
.rule-counts a { color: var(--fg); text-decoration: none; } .rule-counts .n { color: var(--muted); }
.dot { display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin-right: 6px; background: var(--muted); }
.dot.error { background: var(--error); } .dot.warning { background: var(--warning); } .dot.note { background: var(--note); }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
.facts dt { color: var(--muted); } .facts dd { margin: 0; word-break: break-all; }
.device { border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; margin: 12px 0; }
.device .path, .device .coherence { font-weight: 400; color: var(--muted); font-size: 13px; margin-left: 8px; }
.device dl.counts { display: grid; grid-template-columns: repeat(4, 1fr); gap: 4px 16px; margin: 0 0 8px; }
.device dl.counts dt { color: var(--muted); font-size: 12px; } .device dl.counts dd { margin: 0; font-weight: 600; }
.timeline { margin: 8px 0; }
.timeline svg { background: var(--panel); border-radius: 4px; }
.timeline .axis { stroke: var(--line); }
.timeline .mappings { fill: none; stroke: var(--map); stroke-width: 1.5; }
.timeline .allocations { fill: none; stroke: var(--alloc); stroke-width: 1.5; stroke-dasharray: 4 3; }
.timeline .mark { stroke: #fff; stroke-width: 1; } .timeline .mark.error { fill: var(--error); }
.timeline .mark.warning { fill: var(--warning); } .timeline .mark.note { fill: var(--note); }
.timeline .tick { font-size: 11px; fill: var(--muted); text-anchor: middle; }
.timeline .tick:first-of-type { text-anchor: start; } .timeline .tick:last-of-type { text-anchor: end; }
figcaption { color: var(--muted); font-size: 12px; }
.key { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin: 0 4px 0 12px; }
.key.mappings { background: var(--map); } .key.allocations { background: var(--alloc); }
.key.marks { width: 8px; height: 8px; border-radius: 50%; background: var(--error); }
.limits { color: var(--muted); } .limits summary { cursor: pointer; }
.filters { display: flex; flex-wrap: wrap; gap: 16px; align-items: center; margin: 8px 0 12px; }
.filters fieldset { border: 0; padding: 0; margin: 0; display: flex; gap: 10px; } .filters legend { float: left; margin-right: 8px; color: var(--muted); }
.finding { border: 1px solid var(--line); border-left: 4px solid var(--muted); border-radius: 6px; padding: 10px 14px; margin: 10px 0; }
.finding.error { border-left-color: var(--error); } .finding.warning { border-left-color: var(--warning); } .finding.note { border-left-color: var(--note); }
.finding header { display: flex; flex-wrap: wrap; gap: 8px; align-items: baseline; }
.finding .rule { font-weight: 600; color: var(--fg); }
.finding .where { color: var(--muted); }
.finding .occurrences { font-weight: 600; color: var(--muted); }
.message { margin: 6px 0; }
.caveat { margin: 4px 0; color: var(--warning); font-size: 13px; }
.marker { margin: 4px 0; color: var(--muted); font-size: 13px; }
.location { margin: 4px 0; font-family: ui-monospace, monospace; font-size: 13px; }
details summary { cursor: pointer; color: var(--muted); margin: 4px 0; }
table { border-collapse: collapse; width: 100%; }
table.history th, table.history td, table.index th, table.index td { text-align: left; padding: 2px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.history td:last-child { word-break: break-all; }
table.history th, table.index th { color: var(--muted); font-weight: 600; font-size: 12px; }
table.index td.n { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: var(--panel); padding: 8px 10px; border-radius: 4px; overflow-x: auto; white-space: pre-wrap; }
.fingerprint { color: var(--muted); margin: 4px 0 0; font-size: 11.5px; }
.rule-doc { margin: 12px 0; } .rule-doc .summary { margin: 4px 0; }
footer { color: var(--muted); font-size: 12px; padding: 32px 24px; }
@media print { .filters { display: none !important; } details { display: block; } }
"""

    static let script = """
(function () {
  var form = document.querySelector('form.filters');
  var list = document.querySelector('.finding-list');
  if (!form || !list) return;
  form.hidden = false;
  var cards = Array.prototype.slice.call(list.querySelectorAll('.finding'));
  function apply() {
    var sev = {};
    form.querySelectorAll('input[name=severity]').forEach(function (b) { sev[b.value] = b.checked; });
    var rule = form.rule.value;
    cards.forEach(function (c) {
      c.hidden = !(sev[c.dataset.severity] && (!rule || c.dataset.rule === rule));
    });
    var byTime = form.sort.value === 'time';
    cards.slice().sort(function (a, b) {
      if (byTime) return parseFloat(a.dataset.time) - parseFloat(b.dataset.time);
      return (b.dataset.rank - a.dataset.rank) || (parseFloat(a.dataset.time) - parseFloat(b.dataset.time));
    }).forEach(function (c) { list.appendChild(c); });
  }
  form.addEventListener('change', apply);
})();
"""
}
