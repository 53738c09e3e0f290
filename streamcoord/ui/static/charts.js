// Pictures of runs: a duration sparkline, a stage graph, a Gantt timeline, a runs x stages grid.
import { GLYPH, h, link, pipelineHref, runHref, s, seconds } from "./dom.js";

export function sparkline(recent, width = 120, height = 28) {
  const points = [...recent].reverse(); // oldest first
  if (points.length < 2) return h("span", { class: "muted" }, points.length ? seconds(points[0].duration_seconds) : "no runs");
  const max = Math.max(...points.map((p) => p.duration_seconds), 0.001);
  const x = (i) => (i / (points.length - 1)) * (width - 4) + 2;
  const y = (v) => height - 2 - (v / max) * (height - 4);
  const d = points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p.duration_seconds).toFixed(1)}`).join("");
  const last = points[points.length - 1];
  const label = `durations of the last ${points.length} finished runs, latest ${seconds(last.duration_seconds)}, longest ${seconds(max)}`;
  return s("svg", { class: "spark", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label },
    s("title", {}, label),
    s("path", { d, fill: "none", class: "spark-line" }),
    points.map((p, i) => p.status === "succeeded" ? null :
      s("circle", { cx: x(i), cy: y(p.duration_seconds), r: 2.5, class: `dot st-${p.status}` })));
}

// Longest path from a source: a stage's column. Rows in order of appearance.
function layout(graph) {
  const edges = [...graph.edges, ...graph.cross_pipeline_edges];
  const depth = Object.fromEntries(graph.nodes.map((n) => [n.id, 0]));
  for (let round = 0; round < graph.nodes.length; round++) {
    let moved = false;
    for (const e of edges) {
      if (depth[e.target] < depth[e.source] + 1) { depth[e.target] = depth[e.source] + 1; moved = true; }
    }
    if (!moved) break;
  }
  const rows = {};
  const at = {};
  for (const n of graph.nodes) {
    const col = depth[n.id];
    rows[col] = (rows[col] || 0) + 1;
    at[n.id] = { col, row: rows[col] - 1 };
  }
  return { edges, at, height: Math.max(1, ...Object.values(rows)), width: Math.max(...Object.values(depth), 0) + 1 };
}

// `hrefOf(stage)`: where an own stage's node leads (its explain in the latest run), if anywhere.
export function stageGraph(graph, states = {}, hrefOf = () => null) {
  const W = 170, H = 46, GX = 60, GY = 22;
  const { edges, at, height, width } = layout(graph);
  const pos = (id) => ({ x: 10 + at[id].col * (W + GX), y: 10 + at[id].row * (H + GY) });
  const svgW = 20 + width * (W + GX) - GX, svgH = 20 + height * (H + GY) - GY;
  return s("svg", { class: "graph", viewBox: `0 0 ${svgW} ${svgH}`, width: svgW, height: svgH, role: "group", "aria-label": `stage graph of ${graph.pipeline}` },
    s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      s("path", { d: "M0,0L10,5L0,10z", class: "arrowhead" }))),
    edges.map((e) => {
      const a = pos(e.source), b = pos(e.target);
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
      const cross = graph.cross_pipeline_edges.includes(e);
      return s("path", { d: `M${x1},${y1}C${mx},${y1} ${mx},${y2} ${x2},${y2}`, class: cross ? "edge cross" : "edge", "marker-end": "url(#arrow)" },
        s("title", {}, `${e.target} needs ${e.source}`));
    }),
    graph.nodes.map((n) => {
      const { x, y } = pos(n.id);
      const state = n.own ? states[n.stage] : undefined;
      const label = n.own ? n.stage : `${n.pipeline}.${n.stage}`;
      const word = state ? `${GLYPH[state] || "?"} ${state.replace("_", " ")}` : n.own ? "not run" : "other pipeline";
      const node = s("g", { class: `node ${n.own ? "" : "foreign"} ${state ? `st-${state}` : ""}`, "data-stage": n.id },
        s("rect", { x, y, width: W, height: H, rx: 6 }),
        s("text", { x: x + 10, y: y + 19, class: "name" }, label.length > 22 ? `${label.slice(0, 21)}…` : label),
        s("text", { x: x + 10, y: y + 36, class: "state" }, word),
        s("title", {}, `${n.id}: ${word}`));
      if (!n.own) return s("a", { href: pipelineHref(n.pipeline), "aria-label": `${n.id}, in pipeline ${n.pipeline}` }, node);
      const href = hrefOf(n.stage);
      return href ? s("a", { href, "aria-label": `${n.stage}: ${word}; explain it` }, node) : node;
    }));
}

const ms = (value) => (value ? Date.parse(value) : null);

// One row per stage attempt: the wait between trigger and start, the run, and the retry wait
// before it (from the previous attempt's end). Unfinished bars run to now.
export function gantt(run, now = Date.now()) {
  const rows = [];
  for (const stage of run.stages) {
    let previousEnd = null;
    for (const a of stage.attempts) {
      const triggered = ms(a.triggered_at) ?? ms(a.started_at);
      const started = ms(a.started_at);
      const ended = ms(a.ended_at);
      rows.push({ stage: stage.name, a, triggered, started, ended, previousEnd });
      previousEnd = ended ?? previousEnd;
    }
  }
  if (!rows.length) return h("p", { class: "muted" }, "No stage has been triggered yet.");
  const finished = ms(run.finished_at);
  const t0 = Math.min(ms(run.created_at), ...rows.map((r) => r.previousEnd ?? r.triggered ?? Infinity));
  const t1 = Math.max(finished ?? now, ...rows.map((r) => r.ended ?? now));
  const span = Math.max(t1 - t0, 1);
  const pct = (t) => `${(((t - t0) / span) * 100).toFixed(3)}%`;
  const wide = (from, to) => `${Math.max(((to - from) / span) * 100, 0.4).toFixed(3)}%`;
  const bar = (cls, from, to, text) => h("div", { class: `bar ${cls}`, style: { left: pct(from), width: wide(from, to) }, title: text },
    h("span", { class: "visually-hidden" }, text));
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => h("span", { class: "tick", style: { left: `${f * 100}%` } }, `+${seconds((span * f) / 1000)}`));
  return h("div", { class: "gantt", role: "table", "aria-label": `timeline of ${run.run_id}` },
    h("div", { class: "g-row g-axis", role: "row" }, h("span", { class: "g-label", role: "columnheader" }, "stage attempt"),
      h("div", { class: "g-track", role: "columnheader" }, ticks)),
    rows.map(({ stage, a, triggered, started, ended, previousEnd }) => {
      const end = ended ?? now;
      const bars = [];
      if (previousEnd !== null && triggered !== null && triggered > previousEnd)
        bars.push(bar("retry-wait", previousEnd, triggered, `waited ${seconds((triggered - previousEnd) / 1000)} before retry ${a.attempt}`));
      if (started !== null && triggered !== null && started > triggered)
        bars.push(bar("wait", triggered, started, `queued ${seconds((started - triggered) / 1000)} before starting`));
      if ((started ?? triggered) !== null)
        bars.push(bar(`st-${a.status}`, started ?? triggered, end, `${a.status} after ${seconds((end - (started ?? triggered)) / 1000)}`));
      const retried = a.attempt > 1 ? " retry" : "";
      return h("div", { class: `g-row${retried}`, role: "row", "data-stage": stage, "data-attempt": a.attempt },
        h("span", { class: "g-label", role: "rowheader" }, `${stage} #${a.attempt} `, h("span", { class: `glyph st-${a.status}`, "aria-label": a.status, title: a.status }, GLYPH[a.status] || "?")),
        h("div", { class: "g-track", role: "cell" }, bars));
    }),
    h("p", { class: "legend" }, h("span", { class: "bar-key retry-wait" }), " retry wait ",
      h("span", { class: "bar-key wait" }), " queued (triggered, not started) ",
      h("span", { class: "bar-key st-succeeded" }), " ran (coloured and marked by outcome)"));
}

// Airflow's grid: a column per run (oldest left), a row per stage, a mark per attempt.
export function runGrid(runs, stages) {
  const ordered = [...runs].reverse();
  return h("div", { class: "grid-wrap" }, h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "stage \\ run"),
      ordered.map((r) => h("th", { scope: "col" }, link(runHref(r.run_id), r.run_key, { class: `st-${r.status}`, title: `${r.run_id}: ${r.status}`, "aria-label": `${r.run_key}: ${r.status}` }),
        h("span", { class: `glyph st-${r.status}`, "aria-hidden": "true" }, GLYPH[r.status] || "?"))))),
    h("tbody", {}, stages.map((name) => h("tr", {}, h("th", { scope: "row" }, name),
      ordered.map((r) => {
        const stage = (r.stages || []).find((st) => st.name === name);
        const attempts = stage ? stage.attempts : [];
        return h("td", {}, attempts.length ? attempts.map((a) =>
          h("a", { href: runHref(r.run_id), class: `cell st-${a.status}`, title: `${r.run_key} ${name} #${a.attempt}: ${a.status}`, "aria-label": `${name} attempt ${a.attempt}: ${a.status}` }, GLYPH[a.status] || "?"))
          : h("span", { class: "cell empty", title: stage ? stage.status : "no stage", "aria-label": stage ? stage.status : "not reached" }, stage ? GLYPH[stage.status] || "·" : "·"));
      }))))));
}
