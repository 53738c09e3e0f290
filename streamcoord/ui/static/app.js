// The single-page app: hash routes, one render function per page, live updates over SSE.
import { api, ApiError, follow, query, runPath, token } from "./api.js";
import { gantt, runGrid, sparkline, stageGraph } from "./charts.js";
import {
  confirmAction, h, json, link, pipelineHref, runHref, seconds, show, status, table, time, toast,
} from "./dom.js";

const RANK = { viewer: 1, operator: 2, admin: 3 };
const TERMINAL = new Set(["succeeded", "failed", "cancelled", "timed_out"]);
const GRID_RUNS = 20; // runs per page of a pipeline's grid
const LIST_RUNS = 50;
const main = document.getElementById("main");
const state = { who: null, config: { jaeger_url: null }, page: null, stream: null };

const can = (role) => state.who && RANK[state.who.role] >= RANK[role];

// Each page gets a scope: aborted (requests, streams, timers) when the user navigates away.
function scope() {
  state.page?.abort();
  state.page = new AbortController();
  return state.page.signal;
}

// Re-render at most once per `ms` however many changes arrive.
function debounce(fn, ms = 300) {
  let timer = null;
  return () => { if (!timer) timer = setTimeout(() => { timer = null; fn(); }, ms); };
}

// One stream per page: a page that re-renders keeps its stream (no gap to miss changes in) and
// only swaps the handler; a new page or other filters open a new one.
function live(params, onChange, signal) {
  const key = JSON.stringify(params);
  if (state.stream && state.stream.key === key && state.stream.signal === signal) {
    state.stream.onChange = onChange;
    return;
  }
  state.stream?.controller.abort();
  const controller = new AbortController();
  signal.addEventListener("abort", () => controller.abort(), { once: true });
  const stream = { key, signal, controller, onChange };
  state.stream = stream;
  const marker = document.getElementById("live");
  follow(params, (...args) => stream.onChange(...args), controller.signal, (up) => {
    // The stream starts now: read the page again once, for what changed since it was fetched.
    if (up) stream.onChange();
    marker.replaceChildren(up ? h("span", { title: "updates arrive as they happen" }, "● live") : h("span", { class: "muted" }, "○ reconnecting"));
  });
}

// Sends an action; the toast follows the command link to the coordinator's verdict.
async function act(label, path, body) {
  try {
    const sent = await api(path, { method: "POST", body });
    toast(`${label}: sent, waiting for the coordinator…`);
    for (let i = 0; i < 60; i++) {
      const command = await api(sent.link);
      if (command.state !== "pending") {
        toast(command.state === "accepted" ? `${label}: accepted` : `${label}: rejected (${command.reason}) ${command.message || ""}`,
          command.state === "accepted" ? "ok" : "error");
        return command;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    toast(`${label}: still pending; see ${sent.link}`);
  } catch (error) {
    toast(`${label}: ${error.message}`, "error");
  }
  return null;
}

const actionButton = (role, text, onclick, cls = "") => (can(role) ? h("button", { class: `action ${cls}`, onclick }, text) : null);

// ---- token --------------------------------------------------------------------------------

function tokenPage(message) {
  scope();
  document.getElementById("who").replaceChildren();
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true, size: 50, "aria-describedby": "token-help" });
  show(main, h("section", { class: "card narrow" },
    h("h1", {}, "Sign in with a token"),
    message ? h("p", { class: "error", role: "alert" }, message) : null,
    h("form", { onsubmit: async (event) => {
      event.preventDefault();
      token.set(input.value.trim());
      if (await identify()) route();
      else tokenPage("That token was refused.");
    } },
      h("label", { for: "token" }, "API token"), " ", input, " ", h("button", { type: "submit" }, "Sign in"),
      h("p", { id: "token-help", class: "muted" }, "The token `streamcoord serve` printed at start, or one from `streamcoord token create`. It is kept in this tab only (sessionStorage)."))));
  input.focus();
}

async function identify() {
  try {
    state.who = await api("/api/v1/whoami");
  } catch {
    state.who = null;
    return false;
  }
  document.getElementById("who").replaceChildren(
    h("span", { "data-role": state.who.role }, `${state.who.name} (${state.who.role})`), " ",
    h("button", { class: "secondary", onclick: () => { token.clear(); state.who = null; tokenPage(); } }, "Sign out"));
  return true;
}

// ---- pipelines ------------------------------------------------------------------------------

async function pipelinesPage(signal) {
  const since = new Date(Date.now() - 86400000).toISOString();
  const [pipelines, stats] = await Promise.all([
    api("/api/v1/pipelines", { signal }), api(`/api/v1/pipeline-stats${query({ since, recent: 30 })}`, { signal }),
  ]);
  const specs = await Promise.all(pipelines.map((p) => api(`/api/v1/pipelines/${encodeURIComponent(p.name)}/spec`, { signal })));
  const byName = Object.fromEntries(stats.map((st) => [st.pipeline, st]));
  const counts = (st) => {
    const entries = Object.entries(st?.counts || {}).sort();
    return entries.length ? h("span", { class: "counts" }, entries.map(([k, n]) =>
      link(`#/runs${query({ pipeline: st.pipeline, status: k })}`, [status(k), ` ${n}`], { class: "count" }))) : h("span", { class: "muted" }, "none");
  };
  show(main, h("h1", {}, "Pipelines"),
    table(["pipeline", "triggers", "state", "runs in the last day", "durations", ""], pipelines.map((p, i) => [
      h("div", {}, link(pipelineHref(p.name), p.name, { class: "strong" }), h("div", { class: "muted small" }, p.description)),
      [...new Set(specs[i].triggers.map((t) => t.kind))].join(", ") || "–",
      p.paused ? h("span", { class: "badge paused" }, "⏸ paused") : p.paused === false ? h("span", { class: "badge" }, "▶ active") : h("span", { class: "muted" }, "unknown"),
      counts(byName[p.name]),
      sparkline(byName[p.name]?.recent || []),
      pauseButton(p),
    ]), { class: "pipelines" }));
  live({}, debounce(() => !signal.aborted && render(pipelinesPage, signal), 1000), signal);
}

function pauseButton(p) {
  if (p.paused) return actionButton("admin", "Resume", async () => {
    if (await confirmAction(`Resume ${p.name}? Held runs and stages start in arrival order.`, "Resume")) { await act(`resume ${p.name}`, `/api/v1/pipelines/${encodeURIComponent(p.name)}/resume`); route(); }
  });
  return actionButton("admin", "Pause", async () => {
    if (await confirmAction(`Pause ${p.name}? No new runs or stages start until it is resumed.`, "Pause")) { await act(`pause ${p.name}`, `/api/v1/pipelines/${encodeURIComponent(p.name)}/pause`); route(); }
  }, "danger");
}

// ---- one pipeline ---------------------------------------------------------------------------

function triggerForm(p) {
  if (!p.manual || !can("operator")) return null;
  const key = h("input", { id: "run-key", placeholder: "default: now (UTC)", size: 24 });
  const params = h("textarea", { id: "run-params", rows: 3, cols: 40, placeholder: '{"day": "2026-01-15"}' });
  return h("details", { class: "card" }, h("summary", {}, "Trigger a run"),
    h("form", { class: "trigger", onsubmit: async (event) => {
      event.preventDefault();
      let body;
      try { body = { run_key: key.value.trim() || null, params: params.value.trim() ? JSON.parse(params.value) : {} }; } catch (error) {
        toast(`params: not JSON (${error.message})`, "error");
        return;
      }
      if (!(await confirmAction(`Request a run of ${p.name}${body.run_key ? ` with key ${body.run_key}` : ""}?`, "Trigger"))) return;
      const command = await act(`trigger ${p.name}`, `/api/v1/pipelines/${encodeURIComponent(p.name)}/runs`, body);
      const runId = command?.runs?.[0] || (command?.state === "accepted" && body.run_key ? `${p.name}/${body.run_key}` : null);
      if (runId) toast(h("span", {}, `trigger ${p.name}: accepted, `, link(runHref(runId), `open ${runId}`)), "ok");
    } },
      h("label", { for: "run-key" }, "run key"), key, h("label", { for: "run-params" }, "params (JSON)"), params,
      h("button", { type: "submit" }, "Trigger")));
}

async function pipelinePage(signal, name, params) {
  const base = `/api/v1/pipelines/${encodeURIComponent(name)}`;
  const [p, graph, page] = await Promise.all([
    api(base, { signal }), api(`${base}/graph`, { signal }),
    api(`/api/v1/runs${query({ pipeline: name, limit: GRID_RUNS, cursor: params.get("cursor") })}`, { signal }),
  ]);
  const details = await Promise.all(page.items.map((r) => api(runPath(r.run_id), { signal })));
  const latest = params.get("cursor") ? null : details[0];
  const states = Object.fromEntries((latest?.stages || []).map((st) => [st.name, st.status]));
  show(main, 
    h("p", { class: "crumbs" }, link("#/", "Pipelines"), " / ", name),
    h("h1", {}, name, " ", p.paused ? h("span", { class: "badge paused" }, "⏸ paused") : null),
    h("p", { class: "muted" }, p.description, p.owner ? ` · owner ${p.owner}` : "", p.tags.length ? ` · ${p.tags.join(", ")}` : ""),
    h("div", { class: "row" }, pauseButton(p)),
    triggerForm(p),
    h("section", { class: "card" }, h("h2", {}, "Graph"),
      h("p", { class: "muted" }, latest ? ["Stage states of the latest run ", link(runHref(latest.run_id), latest.run_key), " (", status(latest.status), "); a stage opens its explain."] : "No run yet."),
      h("div", { class: "scroll" }, stageGraph(graph, states, (stage) => latest ? `${runHref(latest.run_id)}${query({ explain: stage })}` : null))),
    h("section", { class: "card" }, h("h2", {}, "Recent runs"),
      details.length ? runGrid(details, p.stages) : h("p", { class: "muted" }, "No runs."),
      pager(`#/pipelines/${encodeURIComponent(name)}`, params, page.next_cursor),
      h("p", {}, link(`#/runs${query({ pipeline: name })}`, "All runs of this pipeline as a list"))));
  live({ pipeline: name }, debounce(() => !signal.aborted && render((sig) => pipelinePage(sig, name, params), signal), 500), signal);
}

function pager(base, params, next) {
  const here = Object.fromEntries(params);
  return h("nav", { class: "pager", "aria-label": "pages" },
    params.get("cursor") ? link(`${base}${query({ ...here, cursor: undefined })}`, "⏮ newest") : null, " ",
    next ? link(`${base}${query({ ...here, cursor: next })}`, "older ⏭", { rel: "next" }) : h("span", { class: "muted" }, "no older runs"));
}

// ---- runs list ------------------------------------------------------------------------------

async function runsPage(signal, params) {
  const filters = { pipeline: params.get("pipeline"), status: params.get("status"), run_key: params.get("run_key"), requested_by: params.get("requested_by") };
  const page = await api(`/api/v1/runs${query({ ...filters, limit: LIST_RUNS, cursor: params.get("cursor") })}`, { signal });
  const field = (name, label) => [h("label", { for: `f-${name}` }, label), h("input", { id: `f-${name}`, name, value: filters[name] || "", size: 14 })];
  show(main, h("h1", {}, "Runs"),
    h("form", { class: "filters", onsubmit: (event) => {
      event.preventDefault();
      location.hash = `#/runs${query(Object.fromEntries(new FormData(event.target)))}`;
    } }, field("pipeline", "pipeline"), field("status", "status"), field("run_key", "run key"), field("requested_by", "requested by"), h("button", {}, "Filter")),
    table(["run", "status", "requested by", "created", "duration"], page.items.map((r) => [
      link(runHref(r.run_id), r.run_id), status(r.status), r.requested_by || "–", time(r.created_at), seconds(r.duration_seconds),
    ]), { class: "runs" }),
    pager("#/runs", params, page.next_cursor));
  if (!params.get("cursor")) live({ pipeline: filters.pipeline }, debounce(() => !signal.aborted && render((sig) => runsPage(sig, params), signal), 1000), signal);
}

// ---- one run --------------------------------------------------------------------------------

async function runPage(signal, runId, params) {
  let run, audit;
  try {
    [run, audit] = await Promise.all([api(runPath(runId), { signal }), api(`${runPath(runId)}/audit`, { signal })]);
  } catch (error) {
    if (!(error instanceof ApiError && error.problem.code === "unknown-run")) throw error;
    // Just requested: the read model follows Kafka a moment behind; show it when it arrives.
    show(main, h("h1", {}, runId), h("p", { class: "muted" }, "Not in the read model yet; waiting for its first record…"));
    live({ run_id: runId }, debounce(() => !signal.aborted && render((sig) => runPage(sig, runId, params), signal), 300), signal);
    return;
  }
  const explainOf = params.get("explain");
  const jaeger = state.config.jaeger_url && run.trace_id ? link(`${state.config.jaeger_url}/trace/${run.trace_id}`, "trace in Jaeger ↗", { target: "_blank", rel: "noopener" }) : null;
  const cancel = !TERMINAL.has(run.status) ? actionButton("operator", "Cancel run", async () => {
    if (await confirmAction(`Cancel ${run.run_id} and its unfinished stages?`, "Cancel run")) await act(`cancel ${run.run_id}`, `${runPath(run.run_id)}/cancel`, { reason: `cancelled from the web UI by ${state.who.name}` });
  }, "danger") : null;
  show(main, 
    h("p", { class: "crumbs" }, link("#/", "Pipelines"), " / ", link(pipelineHref(run.pipeline), run.pipeline), " / ", run.run_key),
    h("h1", {}, run.run_id, " ", status(run.status, "big")),
    h("dl", { class: "facts" },
      h("dt", {}, "requested by"), h("dd", {}, run.requested_by || "–", run.trigger_type ? ` (${run.trigger_type})` : ""),
      h("dt", {}, "created"), h("dd", {}, time(run.created_at)),
      h("dt", {}, "finished"), h("dd", {}, time(run.finished_at)),
      h("dt", {}, "duration"), h("dd", {}, seconds(run.duration_seconds)),
      h("dt", {}, "spec version"), h("dd", {}, run.spec_version || "–"),
      h("dt", {}, "trace"), h("dd", {}, run.trace_id ? [h("code", {}, run.trace_id), " ", jaeger] : "–")),
    h("div", { class: "row" }, cancel),
    h("section", { class: "card" }, h("h2", {}, "Timeline"), gantt(run)),
    explainOf ? h("section", { class: "card", id: "explain" }, ...(state.explain?.key === `${run.run_id} ${explainOf}` ? state.explain.nodes
      : [h("h2", {}, `Explain ${explainOf}`), h("p", { class: "muted" }, "Asking the coordinator's state…")])) : null,
    h("section", { class: "card" }, h("h2", {}, "Stages"), stagesTable(run)),
    h("section", { class: "card" }, h("h2", {}, "Params"), json(run.params)),
    h("section", { class: "card" }, h("h2", {}, "Status changes"),
      table(["status", "at", "caused by"], run.status_changes.map((c) => [status(c.status), time(c.at), c.caused_by || "–"]))),
    h("section", { class: "card" }, h("h2", {}, "Audit trail"),
      table(["at", "kind", "what", "stage", "by", "summary"], audit.map((e) => [time(e.at), e.kind, e.type, e.stage || "", e.actor, e.summary]), { class: "audit" })));
  if (explainOf) explainInto(document.getElementById("explain"), run.run_id, explainOf, signal);
  live({ run_id: run.run_id }, debounce(() => !signal.aborted && render((sig) => runPage(sig, runId, params), signal, { keepFocus: true }), 300), signal);
}

function stagesTable(run) {
  const explainHref = (stage) => `${runHref(run.run_id)}${query({ explain: stage })}`;
  return table(["stage", "status", "attempts", "outputs", "error (the worker's log tail)", ""], run.stages.map((st) => {
    const last = st.attempts[st.attempts.length - 1];
    const failed = ["failed", "timed_out"].includes(st.status);
    const retry = failed ? actionButton("operator", `Retry ${st.name}`, async () => {
      if (await confirmAction(`Retry ${st.name} of ${run.run_id} now?`, "Retry")) await act(`retry ${st.name}`, `${runPath(run.run_id)}/stages/${encodeURIComponent(st.name)}/retry`);
    }) : null;
    return [h("span", { class: "strong" }, st.name), status(st.status), String(st.attempts.length),
      last && Object.keys(last.outputs).length ? json(last.outputs) : "–",
      st.attempts.filter((a) => a.error).map((a) => h("details", { open: a === last && failed },
        h("summary", {}, `attempt ${a.attempt}${a.worker ? ` on ${a.worker}` : ""}`), h("pre", { class: "log" }, a.error))),
      h("div", { class: "row" }, link(explainHref(st.name), "Explain", { class: "button secondary" }), retry)];
  }), { class: "stages" });
}

async function explainInto(box, runId, stage, signal) {
  try {
    const e = await api(`${runPath(runId)}/stages/${encodeURIComponent(stage)}/explain`, { signal });
    if (signal.aborted) return;
    show(box, h("h2", {}, `Explain ${stage}`),
      h("p", { class: "reason" }, status(e.status), e.attempt ? ` attempt ${e.attempt}` : " not run yet", ` · rule ${e.rule}: `, e.reason),
      e.needs.length ? h("ul", { class: "needs" }, e.needs.map((n) => h("li", {},
        h("span", { "aria-hidden": "true", class: n.satisfied ? "st-succeeded" : "st-failed" }, n.satisfied ? "✔ " : "✘ "),
        h("strong", {}, n.need), ` is ${n.status}: `, n.satisfied ? "met" : "not met", n.by_event ? ` (by event ${n.by_event})` : ""))) : h("p", {}, "No needs: it starts with the run."),
      e.holds.length ? h("p", {}, "Held back by: ", e.holds.join("; ")) : null,
      e.caused_by.length ? h("p", { class: "muted" }, "Caused by events: ", e.caused_by.join(", ")) : null,
      h("p", { class: "muted small" }, "as of ", time(new Date().toISOString()), " (the coordinator's state; asked again as the run changes)"));
    // a live re-render shows this answer until the new one arrives (no flicker)
    state.explain = { key: `${runId} ${stage}`, nodes: [...box.childNodes].map((n) => n.cloneNode(true)) };
  } catch (error) {
    if (!signal.aborted) show(box, h("h2", {}, `Explain ${stage}`), h("p", { class: "error" }, error.message));
  }
}

// ---- dead letters ---------------------------------------------------------------------------

async function deadLettersPage(signal, params) {
  const page = await api(`/api/v1/dead-letters${query({ limit: LIST_RUNS, cursor: params.get("cursor") })}`, { signal });
  show(main, h("h1", {}, "Dead letters"),
    h("p", { class: "muted" }, "Records the coordinator refused, latest first: why an emitted event did nothing."),
    page.items.length ? table(["at", "reason", "event", "error", "value"], page.items.map((d) => [
      time(d.at), h("code", {}, d.reason), [d.event_type || "–", d.event_id ? h("div", { class: "muted small" }, d.event_id) : null],
      d.error, h("code", { class: "preview" }, d.value_preview),
    ]), { class: "dead" }) : h("p", {}, "None."),
    pager("#/dead-letters", params, page.next_cursor));
}

// ---- routing --------------------------------------------------------------------------------

async function render(page, signal, { keepFocus = false } = {}) {
  const focused = keepFocus ? document.activeElement?.textContent : null;
  const scroll = window.scrollY;
  try {
    await page(signal);
    if (!signal.aborted) performance.mark("streamcoord:drawn"); // bench/ui.py reads it
    if (keepFocus) {
      window.scrollTo(0, scroll);
      const again = focused && [...main.querySelectorAll("a, button")].find((el) => el.textContent === focused);
      again?.focus();
    }
  } catch (error) {
    if (signal.aborted) return;
    if (error instanceof ApiError && error.status === 401) return tokenPage("The token was refused; paste another.");
    show(main, h("h1", {}, "Something went wrong"), h("p", { class: "error", role: "alert" }, error.message));
  }
}

function route() {
  const [path, search = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(search);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const signal = scope();
  document.getElementById("live").replaceChildren();
  for (const a of document.querySelectorAll("header nav a")) a.toggleAttribute("aria-current", a.getAttribute("href") === `#/${parts[0] || ""}`);
  let page;
  if (parts[0] === "pipelines" && parts[1]) page = (sig) => pipelinePage(sig, parts[1], params);
  else if (parts[0] === "runs" && parts[1]) page = (sig) => runPage(sig, parts.slice(1).join("/"), params);
  else if (parts[0] === "runs") page = (sig) => runsPage(sig, params);
  else if (parts[0] === "dead-letters") page = (sig) => deadLettersPage(sig, params);
  else page = pipelinesPage;
  const first = main.dataset.path !== path;
  main.dataset.path = path;
  render(page, signal).then(() => { if (first) main.focus({ preventScroll: false }); });
}

async function start() {
  const config = fetch("ui-config.json").then((r) => r.json()).catch(() => ({ jaeger_url: null }));
  window.addEventListener("hashchange", () => (state.who ? route() : tokenPage()));
  const known = token.get() ? await identify() : false;
  state.config = await config;
  if (known) route();
  else tokenPage();
}

start();
