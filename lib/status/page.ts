// GET /: the live status page. One self-contained document (inline CSS and
// script, no external resources) that polls /status.json once a second
// and keeps the last five minutes of rates in the browser to draw its
// charts (inline SVG). Text from the server goes in with textContent only.

export const STATUS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>mailgate status</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:16px;background:#f6f7f9;color:#222}
h1{font-size:18px;margin:0 0 12px}h2{font-size:14px;margin:0 0 6px;color:#555}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px}
.big{font-size:24px;font-weight:600}.row{display:flex;gap:16px}
.lbl{color:#777;font-size:12px}table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:2px 6px;border-bottom:1px solid #eee;font-size:12px}
#errors{font:11px/1.3 monospace;white-space:pre-wrap;max-height:180px;overflow:auto;margin:0}
svg{width:100%;height:70px;background:#fafbfc}.ok{stroke:#2a7;fill:none}.bad{stroke:#d33;fill:none}
#state{font-size:12px;color:#777}
</style></head><body>
<h1>mailgate status <span id="state">connecting...</span></h1>
<div class="grid">
<div class="card"><h2>Sessions open now</h2><div class="row">
<div><div class="lbl">IMAP</div><div class="big" id="open-imap">-</div></div>
<div><div class="lbl">POP3</div><div class="big" id="open-pop3">-</div></div>
<div><div class="lbl">SMTP</div><div class="big" id="open-smtp">-</div></div>
<div><div class="lbl">accepted</div><div class="big" id="accepted">-</div></div></div></div>
<div class="card"><h2>Logins (total)</h2><div class="row">
<div><div class="lbl">ok</div><div class="big" id="logins-ok">-</div></div>
<div><div class="lbl">failed</div><div class="big" id="logins-failed">-</div></div>
<div><div class="lbl">per second</div><div class="big" id="logins-rate">-</div></div></div></div>
<div class="card"><h2>Auth service latency</h2><div class="row">
<div><div class="lbl">mean ms</div><div class="big" id="auth-avg">-</div></div>
<div><div class="lbl">answers</div><div class="big" id="auth-count">-</div></div></div></div>
<div class="card"><h2>Logins/s (green) and failures/s (red), last 5 minutes</h2>
<svg id="chart-logins" viewBox="0 0 300 70" preserveAspectRatio="none"><polyline class="ok" id="line-ok"/><polyline class="bad" id="line-bad"/></svg></div>
<div class="card"><h2>Sessions open, last 5 minutes</h2>
<svg id="chart-open" viewBox="0 0 300 70" preserveAspectRatio="none"><polyline class="ok" id="line-open"/></svg></div>
<div class="card"><h2>Busiest backends</h2><table><thead><tr><th>upstream</th><th>logins</th><th>errors</th></tr></thead><tbody id="backends"></tbody></table></div>
<div class="card" id="workers-card"><h2>Workers</h2><table><thead><tr><th>#</th><th>pid</th><th>open</th><th>logins</th></tr></thead><tbody id="workers"></tbody></table></div>
</div>
<div class="card" style="margin-top:12px"><h2>Recent errors and warnings</h2><pre id="errors"></pre></div>
<script>
"use strict";
const N = 300;
const $ = (id) => document.getElementById(id);
const set = (id, v) => { $(id).textContent = String(v); };
function line(id, vals, max) {
  // The newest point at the right edge; the chart fills up over five minutes.
  const pts = vals.map((v, i) => (300 - (vals.length - 1 - i) * 300 / (N - 1)).toFixed(1) + "," + (68 - 64 * v / max).toFixed(1));
  $(id).setAttribute("points", pts.join(" "));
}
function rows(id, list, cells) {
  const tb = $(id); tb.textContent = "";
  for (const x of list) {
    const tr = document.createElement("tr");
    for (const c of cells(x)) { const td = document.createElement("td"); td.textContent = String(c); tr.appendChild(td); }
    tb.appendChild(tr);
  }
}
function draw(s) {
  set("open-imap", s.open.imap ?? 0); set("open-pop3", s.open.pop3 ?? 0); set("open-smtp", s.open.smtp ?? 0);
  set("accepted", s.accepted); set("logins-ok", s.logins.ok); set("logins-failed", s.logins.failed);
  set("auth-count", s.auth.count);
  set("auth-avg", s.auth.count ? (1000 * s.auth.sumSeconds / s.auth.count).toFixed(2) : "-");
  // Rates from the server's history (one sample a second, five minutes), so a page opened now has them.
  const h = s.history, ok = [], bad = [], open = [];
  for (let i = 1; i < h.length; i++) {
    const dt = Math.max(0.001, (h[i].t - h[i - 1].t) / 1000);
    ok.push(Math.max(0, h[i].ok - h[i - 1].ok) / dt);
    bad.push(Math.max(0, h[i].failed - h[i - 1].failed) / dt);
    open.push(h[i].open);
  }
  set("logins-rate", ok.length ? ok[ok.length - 1].toFixed(1) : "-");
  const max = Math.max(1, ...ok, ...bad);
  line("line-ok", ok, max); line("line-bad", bad, max);
  line("line-open", open, Math.max(1, ...open));
  rows("backends", s.backends, (b) => [b.upstream, b.logins, b.errors]);
  $("workers-card").style.display = s.workers.length ? "" : "none";
  rows("workers", s.workers, (w) => [w.slot, w.pid, w.open, w.logins]);
  $("errors").textContent = s.errors.length ? s.errors.join("\\n") : "(none)";
  set("state", s.version + " on " + s.runtime + ", updated " + new Date(s.time).toLocaleTimeString());
}
async function poll() {
  try {
    const r = await fetch("/status.json", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    draw(await r.json());
  } catch (e) { set("state", "not reachable: " + e.message); }
  setTimeout(poll, 1000);
}
poll();
</script></body></html>
`;
