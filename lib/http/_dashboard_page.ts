/** @module The dashboard page: static HTML plus a script that polls /api/dashboard and draws SVG. */

/** The page; `{{service}}` is replaced with the (escaped) service name. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wikistream dashboard</title>
<style>
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--mute:#677084;--line:#e2e5ea;--accent:#3366cc}
*{box-sizing:border-box}body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:var(--bg);color:var(--ink)}
header{display:flex;align-items:center;gap:12px;padding:14px 24px;background:#1d2330;color:#fff}
header h1{font-size:18px;margin:0;font-weight:600}header .sub{color:#aab3c5;font-size:13px}
.badge{padding:2px 8px;border-radius:10px;font-size:12px;font-weight:600;background:#556}
.badge.live{background:#14866d}.badge.replay{background:#ac6600}.badge.error{background:#d33}
header .right{margin-left:auto;color:#aab3c5;font-size:12px}
main{padding:18px 24px;display:grid;gap:16px;grid-template-columns:repeat(6,1fr)}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px}
.stat .v{font-size:24px;font-weight:650}.stat .k{color:var(--mute);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.stat .n{color:var(--mute);font-size:12px}
.wide{grid-column:span 6}.half{grid-column:span 3}
h2{font-size:14px;margin:0 0 8px}h2 small{color:var(--mute);font-weight:400}
svg text{font-size:11px;fill:var(--mute)}
.legend{display:flex;flex-wrap:wrap;gap:10px;margin-top:6px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.who{display:flex;height:18px;border-radius:4px;overflow:hidden;background:var(--line);margin:6px 0}
table{width:100%;border-collapse:collapse}td,th{text-align:left;padding:5px 6px;border-bottom:1px solid var(--line);white-space:nowrap}
th{color:var(--mute);font-weight:500;font-size:12px}td.t{white-space:normal;overflow-wrap:anywhere;min-width:8em}td.num,th.num{text-align:right}
.empty{color:var(--mute);padding:8px 6px}
.pick{display:flex;gap:4px}.pick button{font:inherit;font-size:12px;padding:2px 8px;border-radius:10px;border:1px solid #556;background:transparent;color:#aab3c5;cursor:pointer}
.pick button[aria-pressed=true]{background:#3366cc;border-color:#3366cc;color:#fff}
.state{font-weight:600}.state.ok{color:#14866d}.state.retrying,.state.starting{color:#ac6600}.state.stalled{color:#d33}
@media (max-width:900px){main{grid-template-columns:repeat(2,1fr)}.wide,.half{grid-column:span 2}}
</style></head>
<body>
<header><h1>wikistream</h1><span class="sub">{{service}}</span>
<span id="mode" class="badge">loading</span><span id="window" class="sub"></span>
<span class="pick" id="pick" data-testid="window-picker" role="group" aria-label="Window"><button data-window="1h">1 h</button><button data-window="24h">24 h</button><button data-window="7d">7 d</button><button data-window="all">all</button></span>
<span class="right">updated <span id="updated" data-generation="0">never</span> · refreshes every 5 s</span></header>
<main>
<div class="card stat"><div class="k">Changes</div><div class="v" id="s-changes">–</div><div class="n">in the window</div></div>
<div class="card stat"><div class="k">New pages</div><div class="v" id="s-new">–</div><div class="n">in the window</div></div>
<div class="card stat half"><div class="k">Bots · humans · anonymous</div>
<div class="who" id="who" data-testid="who"></div>
<div class="legend" id="who-key" data-testid="who-key"><span data-kind="bots"><i style="background:#9aa3b5"></i>bots</span><span data-kind="humans"><i style="background:#3366cc"></i>humans</span><span data-kind="anonymous"><i style="background:#ff9900"></i>anonymous</span></div>
<div class="n" id="who-text">–</div></div>
<div class="card stat"><div class="k">Consumer lag</div><div class="v" id="s-lag">–</div><div class="n">records not yet written</div></div>
<div class="card stat"><div class="k">Seconds behind</div><div class="v" id="s-behind">–</div><div class="n" id="s-newest">newest event –</div></div>
<div class="card stat"><div class="k">Dead letters</div><div class="v" id="s-dlq">–</div><div class="n">kept in dead_letters</div></div>
<div class="card stat"><div class="k">Wikis active</div><div class="v" id="s-wikis">–</div><div class="n">in the window</div></div>
<div class="card stat half"><div class="k">Window</div><div class="n" id="s-window">–</div></div>
<section class="card wide" id="sources-card" hidden><h2>Sources <small>the producer's view of each wiki</small></h2>
<table data-testid="sources"><thead><tr><th>wiki</th><th>state</th><th>last successful poll (UTC)</th><th>last error</th><th>retry in</th></tr></thead><tbody id="sources"></tbody></table></section>
<section class="card wide"><h2><span id="chart-title">Changes per minute per wiki</span> <small id="chart-note"></small></h2>
<svg id="chart" data-testid="chart" viewBox="0 0 960 260" width="100%" role="img" aria-label="Changes per minute per wiki"></svg>
<div class="legend" id="legend"></div></section>
<section class="card half"><h2>Most-edited pages <small>edits in the window</small></h2>
<table data-testid="top-pages"><thead><tr><th>wiki</th><th>page</th><th class="num">edits</th><th>last edit (UTC)</th></tr></thead><tbody id="top"></tbody></table></section>
<section class="card half"><h2>New pages <small>newest first</small></h2>
<table data-testid="new-pages"><thead><tr><th>time (UTC)</th><th>wiki</th><th>page</th><th>user</th></tr></thead><tbody id="new"></tbody></table></section>
</main>
<script src="/dashboard.js"></script>
</body></html>
`;

/** The page script (plain ES2020, no dependencies; text goes in through textContent only). */
export const DASHBOARD_JS = `"use strict";
var COLORS = ["#3366cc","#dc3912","#ff9900","#109618","#990099","#0099c6","#dd4477","#66aa00","#9aa3b5"];
var NS = "http://www.w3.org/2000/svg";
var generation = 0;
var chosen = null, timer = null, seq = 0;
function $(id) { return document.getElementById(id); }
function el(tag, attrs, text, ns) {
  var e = ns ? document.createElementNS(NS, tag) : document.createElement(tag);
  for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function fmt(n) { return n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"); }
function hhmm(iso) { return iso.slice(11, 16); }
function when(iso) { return iso.slice(0, 10) + " " + iso.slice(11, 19); }
function ago(s) {
  if (s === null || s === undefined) return "–";
  if (s < 120) return s + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  if (s < 172800) return Math.round(s / 3600) + " h";
  return Math.round(s / 86400) + " d";
}
function drawChart(d) {
  var svg = $("chart");
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  var W = 960, H = 260, L = 48, R = 8, T = 10, B = 24;
  var n = d.window.minutes, from = Date.parse(d.window.from), per = d.window.bucket_minutes * 60000;
  var color = {}; d.wikis.forEach(function (w, i) { color[w] = COLORS[Math.min(i, COLORS.length - 1)]; });
  if (d.wikis.indexOf("(other)") >= 0) color["(other)"] = COLORS[COLORS.length - 1];
  var slots = Math.round(n * 60000 / per), stack = []; for (var i = 0; i < slots; i++) stack.push(0);
  var max = 0;
  d.per_minute.forEach(function (p) {
    var i = Math.round((Date.parse(p.minute) - from) / per);
    if (i >= 0 && i < slots) { stack[i] += p.changes; if (stack[i] > max) max = stack[i]; }
  });
  var top = niceMax(max), bw = (W - L - R) / slots, y = function (v) { return H - B - (v / top) * (H - T - B); };
  for (var g = 0; g <= 4; g++) {
    var v = top * g / 4;
    svg.appendChild(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e2e5ea" }, null, true));
    svg.appendChild(el("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, fmt(v), true));
  }
  var bucket = d.window.bucket_minutes, bars = Math.round(n / bucket), step = Math.max(1, Math.ceil(bars / 8));
  bw = (W - L - R) / bars;
  for (var m = 0; m < bars; m += step) {
    svg.appendChild(el("text", { x: L + m * bw, y: H - 6 }, label(new Date(from + m * bucket * 60000).toISOString(), bucket), true));
  }
  var base = []; for (var j = 0; j < slots; j++) base.push(0);
  var order = {}; d.wikis.forEach(function (w, i) { order[w] = i; });
  d.per_minute.slice().sort(function (a, b) { return order[a.wiki] - order[b.wiki]; }).forEach(function (p) {
    var i = Math.round((Date.parse(p.minute) - from) / per);
    if (i < 0 || i >= slots || p.changes <= 0) return;
    var y0 = y(base[i]), y1 = y(base[i] + p.changes);
    base[i] += p.changes;
    var r = el("rect", { x: (L + i * bw + 1).toFixed(1), y: y1.toFixed(1), width: Math.max(bw - 2, 1).toFixed(1),
      height: Math.max(y0 - y1, 0.5).toFixed(1), fill: color[p.wiki], "data-wiki": p.wiki, "data-minute": p.minute,
      "data-changes": p.changes }, null, true);
    r.appendChild(el("title", {}, p.wiki + " " + label(p.minute, d.window.bucket_minutes) + " UTC: " + p.changes + " changes", true));
    svg.appendChild(r);
  });
  if (d.per_minute.length === 0) {
    svg.appendChild(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "No changes in this window yet", true));
  }
  var legend = $("legend"); legend.textContent = "";
  d.wikis.forEach(function (w) {
    var s = el("span", { "data-wiki": w }); s.appendChild(el("i", { style: "background:" + color[w] })); s.appendChild(document.createTextNode(w)); legend.appendChild(s);
  });
  $("chart-title").textContent = "Changes per " + span(d.window.bucket_minutes) + " per wiki";
  $("chart-note").textContent = label(d.window.from, d.window.bucket_minutes) + " – " + label(d.window.to, d.window.bucket_minutes) + " UTC, stacked, busiest wikis first";
}
function label(iso, bucket) { return bucket < 60 && iso.slice(0, 10) === new Date().toISOString().slice(0, 10) ? hhmm(iso) : bucket < 1440 ? iso.slice(5, 10) + " " + hhmm(iso) : iso.slice(0, 10); }
function span(min) { return min === 1 ? "minute" : min < 60 ? min + " minutes" : min < 1440 ? (min / 60) + " h" : min < 10080 ? (min / 1440) + " d" : min < 43200 ? "week" : "30 days"; }
function windowText(d) {
  var k = d.window.key, name = k === "all" ? "all data" : "last " + k.replace("h", " h").replace("d", " d");
  return name + (d.mode === "replay" ? " up to the newest event" : " until now");
}
function renderSources(list) {
  var card = $("sources-card");
  if (!list) { card.hidden = true; return; }
  card.hidden = false;
  rows($("sources"), list, function (s) {
    var err = s.last_error ? when(s.last_error.at) + " " + s.last_error.name + ": " + s.last_error.message : "–";
    return [[s.wiki], [s.state, "state " + s.state], [s.last_success ? when(s.last_success) : "never"], [err, "t"],
      [s.retry_in_seconds === null ? "–" : s.retry_in_seconds + " s"]];
  }, 5);
}
function niceMax(v) {
  // Four gridline steps of a whole "nice" size (1, 2, 2.5 or 5 times a power of ten).
  var raw = Math.max(v, 1) / 4, p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
  var step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
  return Math.max(1, Math.ceil(step)) * 4;
}
function rows(tbody, items, cells, cols) {
  tbody.textContent = "";
  if (items.length === 0) { var tr = el("tr"); var td = el("td", { colspan: cols || 4, class: "empty" }, "none in this window"); tr.appendChild(td); tbody.appendChild(tr); return; }
  items.forEach(function (it) {
    var tr = el("tr");
    cells(it).forEach(function (c) { tr.appendChild(el("td", c[1] ? { class: c[1] } : {}, c[0])); });
    tbody.appendChild(tr);
  });
}
function render(d, lag, sources) {
  var mode = $("mode"); mode.className = "badge " + d.mode;
  var failing = (sources || []).filter(function (s) { return s.state !== "ok"; });
  mode.textContent = d.mode === "live" ? "live" : d.mode === "replay" ? "replay" : failing.length ? "no data: " + failing.map(function (s) { return s.wiki + " " + s.state; }).join(", ") : "no data";
  $("window").textContent = windowText(d);
  var buttons = $("pick").querySelectorAll("button");
  for (var b = 0; b < buttons.length; b++) buttons[b].setAttribute("aria-pressed", String(buttons[b].getAttribute("data-window") === d.window.key));
  $("s-window").textContent = when(d.window.from) + " → " + when(d.window.to) + " UTC" + (d.mode === "replay" ? " (relative to the newest event; the data is older than an hour)" : "");
  renderSources(sources);
  $("s-changes").textContent = fmt(d.totals.changes);
  $("s-new").textContent = fmt(d.totals.new_pages);
  $("s-wikis").textContent = fmt(d.wikis.filter(function (w) { return w !== "(other)"; }).length + (d.wikis.indexOf("(other)") >= 0 ? "+" : ""));
  $("s-dlq").textContent = fmt(d.dead_letters.count) + (d.dead_letters.capped ? "+" : "");
  var t = d.totals, who = $("who"); who.textContent = "";
  [["bots", t.bots, "#9aa3b5"], ["humans", t.humans, "#3366cc"], ["anonymous", t.anonymous, "#ff9900"]].forEach(function (p) {
    if (p[1] > 0) { var s = el("span", { style: "background:" + p[2] + ";flex:" + p[1], title: p[0] + ": " + p[1], "data-kind": p[0], "data-count": p[1] }); who.appendChild(s); }
  });
  $("who-text").textContent = "bots " + fmt(t.bots) + " · humans " + fmt(t.humans) + " · anonymous " + fmt(t.anonymous);
  $("s-lag").textContent = lag ? fmt(Number(lag.total_lag)) : "n/a";
  $("s-behind").textContent = lag ? ago(lag.time_lag_seconds) : "n/a";
  $("s-newest").textContent = "newest event " + (d.newest_event_time ? when(d.newest_event_time) + " UTC" : "–");
  drawChart(d);
  rows($("top"), d.top_pages, function (p) { return [[p.wiki], [p.title || "page " + p.page_id, "t"], [fmt(p.edits), "num"], [when(p.last_edit)]]; });
  rows($("new"), d.new_pages, function (p) { return [[when(p.event_time)], [p.wiki], [p.title || "–", "t"], [p.user_name || "(hidden)", "t"]]; });
}
function tick() {
  var mine = ++seq;
  fetch("/api/dashboard" + (chosen ? "?window=" + chosen : ""), { cache: "no-store" }).then(function (r) {
    if (!r.ok) throw new Error("status " + r.status);
    return r.json();
  }).then(function (body) {
    if (mine !== seq) return; // a newer request (another window) is on its way
    render(body.data, body.lag, body.sources);
    generation++;
    var u = $("updated"); u.textContent = new Date().toISOString().slice(11, 19) + " UTC"; u.setAttribute("data-generation", String(generation));
  }).catch(function (err) {
    var mode = $("mode"); mode.className = "badge error"; mode.textContent = "offline: " + err.message;
  }).finally(function () { if (mine !== seq) return; clearTimeout(timer); timer = setTimeout(tick, window.DASHBOARD_INTERVAL_MS || 5000); });
}
$("pick").addEventListener("click", function (ev) {
  var w = ev.target && ev.target.getAttribute && ev.target.getAttribute("data-window");
  if (!w) return;
  chosen = w;
  clearTimeout(timer); tick();
});
tick();
`;

/** Shown by processes without a database (the producer). */
export const NO_DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wikistream {{service}}</title></head>
<body style="font:15px system-ui,sans-serif;margin:40px;color:#1d2330">
<h1>wikistream {{service}}</h1>
<p>This process has no database, so it has no dashboard. The dashboard is served by the consumer
(<code>deno task consume</code>) and by <code>deno task start</code>.</p>
<p>Here: <a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a> · <a href="/metrics">/metrics</a></p>
</body></html>
`;
