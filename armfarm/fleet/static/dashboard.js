// The armfarm dashboard: polls /v1/dashboard (same origin, session cookie) and draws tables and SVG charts.
// Everything from the server is inserted as text, never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const REFRESH_MS = 2000;

function el(tag, attrs = {}, text = null) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

function fmt(x, digits = 1) {
  return x === null || x === undefined ? "-" : Number(x).toFixed(digits);
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return s < 90 ? `${s.toFixed(0)} s ago` : s < 5400 ? `${(s / 60).toFixed(0)} min ago` : `${(s / 3600).toFixed(1)} h ago`;
}

function fillTable(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows.map(({ cells, cls }) => {
    const tr = el("tr", { class: cls || "" });
    for (const cell of cells) {
      const td = el("td", {}, typeof cell === "object" && cell !== null ? cell.text : String(cell));
      if (typeof cell === "object" && cell !== null && cell.cls) td.className = cell.cls;
      tr.append(td);
    }
    return tr;
  }));
}

function robots(data) {
  const stored = Object.fromEntries(data.robots.map((r) => [r.robot_id, r]));
  const farmRobots = data.farm ? data.farm.robots : null;
  const list = farmRobots || data.robots;
  fillTable("robots", list.map((r) => {
    const s = stored[r.robot_id] || {};
    const alive = farmRobots ? r.alive : null;
    const policy = farmRobots ? (r.policy_version === null ? "default" : `v${r.policy_version}`) : (s.last_policy_id || "-");
    return {
      cls: "robot-row",
      cells: [r.robot_id, alive === null ? { text: "-" } : { text: alive ? "yes" : "no", cls: alive ? "alive" : "dead" },
        ago(farmRobots ? r.last_seen : s.last_upload), s.episodes ?? r.episodes_acked ?? 0,
        farmRobots ? r.pending : "-", policy, farmRobots ? r.restarts : "-"],
    };
  }));
}

function candidates(data) {
  const rounds = data.farm ? data.farm.rounds : [];
  const rows = rounds.slice().reverse().map((r) => {
    const e = (r.candidate || {}).eval || {};
    const against = r.baseline ? `${r.baseline.name} ${fmt(r.baseline.eval.return_mean)}` : "-";
    const decision = r.promoted === true ? { text: "promoted", cls: "promoted" } : r.promoted === false ? "kept out" : r.phase;
    return {
      cls: "round-row",
      cells: [r.round, r.episodes_used, fmt(e.return_mean), e.ci_low === undefined ? "-" : `[${fmt(e.ci_low)}, ${fmt(e.ci_high)}]`,
        against, decision, r.policy_version === null || r.policy_version === undefined ? "-" : `v${r.policy_version}`],
    };
  });
  if (!rows.length) {
    const published = data.policies.map((p) => ({ cls: "round-row", cells: ["-", "-", "-", "-", p.source, "published", `v${p.version}`] }));
    fillTable("candidates", published);
  } else fillTable("candidates", rows);
}

function axes(svg, w, h, pad, lo, hi, label) {
  svg.append(el("svg:line", { x1: pad, y1: h - pad, x2: w - 8, y2: h - pad, stroke: "#9aa1ad" }));
  svg.append(el("svg:line", { x1: pad, y1: 8, x2: pad, y2: h - pad, stroke: "#9aa1ad" }));
  svg.append(el("svg:text", { x: 4, y: 16, "font-size": 10, fill: "#5b6270" }, fmt(hi, 0)));
  svg.append(el("svg:text", { x: 4, y: h - pad, "font-size": 10, fill: "#5b6270" }, fmt(lo, 0)));
  svg.append(el("svg:text", { x: w / 2, y: h - 4, "font-size": 10, fill: "#5b6270", "text-anchor": "middle" }, label));
}

function roundsChart(data) {
  const svg = document.getElementById("rounds-chart");
  svg.replaceChildren();
  const rounds = (data.farm ? data.farm.rounds : []).filter((r) => r.candidate && r.candidate.eval);
  const [w, h, pad] = [760, 240, 36];
  if (!rounds.length) {
    svg.append(el("svg:text", { x: w / 2, y: h / 2, "text-anchor": "middle", fill: "#5b6270" }, "no round decided yet"));
    return;
  }
  const values = rounds.flatMap((r) => [r.candidate.eval.ci_low, r.candidate.eval.ci_high, r.baseline ? r.baseline.eval.return_mean : r.candidate.eval.return_mean]);
  let [lo, hi] = [Math.min(...values), Math.max(...values)];
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const x = (i) => pad + (i + 0.5) * (w - pad - 8) / rounds.length;
  const y = (v) => h - pad - (v - lo) / (hi - lo) * (h - pad - 16);
  axes(svg, w, h, pad, lo, hi, "round");
  const half = (w - pad - 8) / rounds.length / 2;
  const live = rounds.map((r, i) => {
    const v = y(r.baseline ? r.baseline.eval.return_mean : lo);
    return `${i ? "L" : "M"}${x(i) - half * 0.9},${v} H${x(i) + half * 0.9}`;
  }).join(" ");
  svg.append(el("svg:path", { d: live, fill: "none", stroke: "#e08a1e", "stroke-width": 2, "stroke-dasharray": "5 3", class: "live-line" }));
  rounds.forEach((r, i) => {
    const e = r.candidate.eval;
    svg.append(el("svg:line", { x1: x(i), x2: x(i), y1: y(e.ci_low), y2: y(e.ci_high), stroke: "#5b6270" }));
    svg.append(el("svg:circle", { cx: x(i), cy: y(e.return_mean), r: 5, fill: r.promoted ? "#1a7f37" : "#9aa1ad", class: "round-point" }));
    svg.append(el("svg:text", { x: x(i), y: h - pad + 12, "font-size": 10, "text-anchor": "middle", fill: "#5b6270" }, String(r.round)));
  });
}

function ingestChart(data) {
  const svg = document.getElementById("ingest-chart");
  svg.replaceChildren();
  const [w, h, pad] = [360, 120, 30];
  const bins = data.ingest;
  const hi = Math.max(1, ...bins.map((b) => b.episodes));
  axes(svg, w, h, pad, 0, hi, "minute");
  const width = (w - pad - 8) / Math.max(bins.length, 1);
  bins.forEach((b, i) => {
    const top = h - pad - b.episodes / hi * (h - pad - 16);
    svg.append(el("svg:rect", { x: pad + i * width + 1, y: top, width: Math.max(width - 2, 1), height: h - pad - top, fill: "#3c7be0", class: "ingest-bar" }));
  });
}

function learner(data) {
  const box = document.getElementById("learner");
  const bar = document.getElementById("learner-bar");
  const l = data.farm ? data.farm.learner : null;
  if (!l) { box.textContent = data.farm ? "starting" : "no farm"; bar.style.width = "0"; return; }
  if (l.phase === "training") {
    box.textContent = `round ${l.round}: training, step ${l.step} of ${l.total} (${fmt(l.steps_per_s, 0)} steps/s)`;
    bar.style.width = `${100 * l.step / l.total}%`;
  } else if (l.phase === "waiting for data") {
    box.textContent = `round ${l.round}: waiting for data, ${l.episodes} of ${l.needed} episodes stored`;
    bar.style.width = `${100 * Math.min(1, l.episodes / Math.max(l.needed, 1))}%`;
  } else {
    box.textContent = `round ${l.round}: ${l.phase}, waiting for the evaluator`;
    bar.style.width = "100%";
  }
}

function events(data) {
  const items = [];
  if (data.farm) {
    for (const c of data.farm.components) {
      if (c.restarts) items.push(el("li", { class: "error" }, `${c.name}: restarted ${c.restarts} time(s), last exit code ${c.last_exit}`));
    }
    for (const r of data.farm.robots) {
      if (r.restarts) items.push(el("li", { class: "error" }, `${r.robot_id}: restarted ${r.restarts} time(s)`));
      if (r.last_error) items.push(el("li", { class: "error" }, `${r.robot_id}: uploads deferred: ${r.last_error}`));
      if (r.rejected) items.push(el("li", { class: "error" }, `${r.robot_id}: ${r.rejected} episode(s) rejected and quarantined`));
    }
  }
  if (!items.length) items.push(el("li", {}, "none"));
  document.getElementById("events").replaceChildren(...items);
}

function summary(data) {
  const f = data.farm;
  const live = f ? (f.policy_version === null ? "default behaviour" : `v${f.policy_version}`) : (data.policies.length ? `v${data.policies[data.policies.length - 1].version}` : "none");
  document.getElementById("summary").textContent =
    `${f ? `${f.env} · ${f.running ? "running" : "stopped"} · ` : ""}${data.store.episodes} episodes · ${data.store.transitions} transitions · live policy ${live} · updated ${new Date(data.generated_at).toLocaleTimeString()}`;
}

async function refresh() {
  try {
    const response = await fetch("/v1/dashboard", { credentials: "same-origin", cache: "no-store" });
    if (response.status === 401) { window.location.reload(); return; }
    const data = await response.json();
    summary(data); robots(data); candidates(data); roundsChart(data); ingestChart(data); learner(data); events(data);
  } catch (err) {
    document.getElementById("summary").textContent = `cannot reach the server (${err}); retrying`;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
