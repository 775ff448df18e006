// ferry dashboard: polls the read-only API of `ferry serve` and redraws.
// No framework, no CDN: this file, index.html and style.css are compiled
// into the ferry program.
"use strict";

const POLL_MS = 2000;
let token = sessionStorage.getItem("ferry-token") || "";
let paused = false;
const samples = {};  // job id -> [{t, rows}] for rate and the rows/s chart

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c ?? ""));
  return node;
}

async function api(path) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const res = await fetch(path, { headers, cache: "no-store" });
  if (res.status === 401) {
    document.getElementById("token-form").hidden = false;
    throw new Error("unauthorized");
  }
  return res.json();
}

function number(n) { return n == null ? "–" : Math.round(n).toLocaleString("en"); }
function duration(s) {
  if (s == null || !isFinite(s)) return "–";
  s = Math.round(s);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
}

function renderDatabases(status) {
  const box = document.getElementById("databases");
  box.replaceChildren();
  for (const db of status.databases) {
    const card = el("article", { class: "card" + (db.reachable ? "" : " down"),
                                 "aria-label": "database " + db.database });
    card.append(el("h3", {}, db.database));
    const dl = el("dl");
    const row = (k, v, cls) => { dl.append(el("dt", {}, k), el("dd", cls ? { class: cls } : {}, v)); };
    if (!db.reachable) {
      row("state", "unreachable", "bad");
      row("error", db.error);
    } else if (db.engine === "redis") {
      row("redis", db.mode + ", " + db.masters + " master" + (db.masters === 1 ? "" : "s"));
      row("keys", String(db.keys));
      row("memory", Math.round(db.used_memory_bytes / 1048576) + " MiB" +
          (db.max_memory_bytes ? " of " + Math.round(db.max_memory_bytes / 1048576) + " MiB" : ""));
    } else {
      row("schema version", db.current_version || "none");
      row("pending", db.pending + (db.pending ? " (" + db.pending_versions.join(", ") + ")" : ""),
          db.pending ? "warn" : "");
      row("failed", db.failed + (db.failed ? " (" + db.failed_versions.join(", ") + ")" : ""),
          db.failed ? "bad" : "");
      row("lock", db.lock_holder ? db.lock_holder.who + " for " +
          duration(db.lock_holder.held_ms / 1000) : "free");
    }
    card.append(dl);
    box.append(card);
  }
}

function sparkline(points) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 100 30");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const rates = [];
  for (let i = 1; i < points.length; i++) {
    const dt = (points[i].t - points[i - 1].t) / 1000;
    rates.push(dt > 0 ? Math.max(0, (points[i].rows - points[i - 1].rows) / dt) : 0);
  }
  svg.setAttribute("aria-label", "rows per second, last " + rates.length + " samples");
  if (rates.length > 1) {
    const max = Math.max(...rates, 1);
    const d = rates.map((r, i) => (i ? "L" : "M") + (i * 100 / (rates.length - 1)).toFixed(1) +
                        "," + (29 - r / max * 28).toFixed(1)).join(" ");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", d);
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "#2f6fdb");
    path.setAttribute("stroke-width", "1.5");
    path.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(path);
  }
  return svg;
}

function renderJobs(data) {
  const box = document.getElementById("jobs");
  box.replaceChildren();
  const now = Date.now();
  if (!data.jobs.length) box.append(el("p", { class: "muted" }, "no jobs"));
  for (const job of data.jobs) {
    const key = job.database + "/" + job.job_id;
    const hist = samples[key] = (samples[key] || []).concat([{ t: now, rows: job.rows_done }]).slice(-30);
    // Live rate from the last polls while running; the job's average otherwise.
    let rate = job.rows_per_second;
    if (job.state === "running" && hist.length > 1) {
      const a = hist[Math.max(0, hist.length - 5)], b = hist[hist.length - 1];
      if (b.t > a.t) rate = (b.rows - a.rows) * 1000 / (b.t - a.t);
    }
    const pct = job.progress == null ? null : Math.round(job.progress * 1000) / 10;
    const item = el("article", { class: "job", "data-job": job.job_id, "data-state": job.state,
                                 tabindex: "0", "aria-label": job.kind + " job " + job.job_id });
    item.append(el("div", { class: "job-head" },
      el("strong", {}, job.job_id),
      el("span", {}, job.kind),
      el("span", { class: job.state === "failed" ? "bad" : "" }, job.state),
      el("span", { class: "muted" }, job.database)));
    const bar = el("progress", { max: "100", "aria-label": "progress of " + job.job_id });
    if (pct != null) { bar.value = pct; bar.setAttribute("value", String(pct)); }
    item.append(bar);
    item.append(el("div", { class: "job-figures" },
      el("span", { class: "pct" }, pct == null ? "–" : pct + "%"),
      el("span", { class: "rows" }, number(job.rows_done) + " rows"),
      el("span", {}, "chunks " + job.chunks_done + "/" + job.chunks_total +
         (job.chunks_failed ? " (" + job.chunks_failed + " failed)" : "")),
      el("span", { class: "rate" }, number(rate) + " rows/s"),
      el("span", { class: "eta" }, "ETA " + (job.state === "done" ? "done" : duration(job.eta_seconds)))));
    item.append(sparkline(hist));
    if (job.error) item.append(el("p", { class: "bad" }, job.error));
    box.append(item);
  }
  for (const err of data.errors || []) {
    box.append(el("p", { class: "bad" }, err.database + ": " + err.error));
  }
}

function renderHistory(data) {
  const body = document.querySelector("#history tbody");
  body.replaceChildren();
  const rows = [];
  for (const db of data.databases) for (const r of db.rows || []) rows.push([db.database, r]);
  rows.sort((a, b) => (b[1].completed_at || "").localeCompare(a[1].completed_at || ""));
  for (const [database, r] of rows.slice(0, 25)) {
    body.append(el("tr", {}, el("td", {}, database), el("td", {}, r.version || r.script),
      el("td", {}, r.description), el("td", { class: r.status === "failed" ? "bad" : "" }, r.status),
      el("td", {}, r.completed_at), el("td", {}, r.duration_ms)));
  }
}

function renderHealth(ready) {
  const badge = document.getElementById("health");
  const failed = [];
  for (const db of ready.databases) {
    for (const c of db.checks) if (!c.ok) failed.push(db.database + " " + c.name + ": " + c.detail);
  }
  badge.className = "badge " + (ready.ready ? "ok" : "bad");
  badge.textContent = ready.ready ? "healthy" : "unhealthy";
  badge.title = failed.join("\n");
}

async function refresh() {
  const tasks = [
    api("/api/status").then(renderDatabases),
    api("/api/jobs").then(renderJobs),
    api("/api/history?limit=25").then(renderHistory),
    api("/readyz").then(renderHealth),
  ];
  await Promise.allSettled(tasks);
  const t = document.getElementById("updated");
  t.textContent = new Date().toLocaleTimeString();
  t.setAttribute("datetime", new Date().toISOString());
}

function loop() {
  if (!paused) refresh();
  setTimeout(loop, POLL_MS);
}

document.getElementById("refresh").addEventListener("click", refresh);
document.getElementById("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = document.getElementById("token").value;
  sessionStorage.setItem("ferry-token", token);
  document.getElementById("token-form").hidden = true;
  refresh();
});
document.addEventListener("keydown", (ev) => {
  if (ev.target instanceof HTMLInputElement || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === "r") refresh();
  if (ev.key === "j") document.getElementById("jobs").focus();
  if (ev.key === "p") {
    paused = !paused;
    document.getElementById("updated").textContent = paused ? "paused" : "resuming";
  }
});
loop();
