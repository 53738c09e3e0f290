// Small DOM helpers: elements are built with textContent only (no HTML from data).
const SVG_NS = "http://www.w3.org/2000/svg";

function build(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    // Styles through the CSSOM: the page's CSP forbids style attributes.
    else if (key === "style") Object.assign(node.style, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
// Replace a node's children, leaving out the absent ones (null, false, undefined).
export const show = (node, ...children) =>
  node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));

export const s = (tag, attrs, ...children) =>
  build(document.createElementNS(SVG_NS, tag), attrs, children);

// Every status has a glyph and its word: colour is never the only signal.
export const GLYPH = {
  succeeded: "✔", failed: "✘", running: "▶", active: "▶", triggered: "▷", queued: "⧗",
  retry_wait: "↻", ready: "•", pending: "·", skipped: "–", cancelled: "⊘", timed_out: "⌛",
  upstream_failed: "✘", held: "⏸", accepted: "✔", rejected: "✘",
};

export const status = (value, extra = "") =>
  h("span", { class: `status st-${value} ${extra}`.trim() },
    h("span", { "aria-hidden": "true", text: GLYPH[value] || "?" }), ` ${value.replace("_", " ")}`);

export const link = (href, text, attrs = {}) => h("a", { href, ...attrs }, text);
export const runHref = (runId) => `#/runs/${encodeURIComponent(runId)}`;
export const pipelineHref = (name) => `#/pipelines/${encodeURIComponent(name)}`;

export function time(value) {
  if (!value) return "–";
  const date = new Date(value);
  return h("time", { datetime: value, title: date.toISOString() },
    date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" }));
}

export function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  if (value < 120) return `${value.toFixed(1)} s`;
  if (value < 7200) return `${(value / 60).toFixed(1)} min`;
  return `${(value / 3600).toFixed(1)} h`;
}

export const json = (value) => h("pre", { class: "json" }, JSON.stringify(value, null, 2));

let toastTimer = null;
export function toast(message, kind = "info") {
  const box = document.getElementById("toast");
  box.replaceChildren(h("div", { class: `msg ${kind}` }, message));
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.replaceChildren(), 15000); // the latest message, for a while
}

// A confirmation in a modal <dialog> (focus trapped, Escape cancels).
export function confirmAction(text, okLabel = "Confirm") {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  dialog.showModal();
  document.getElementById("confirm-ok").focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

export function table(head, rows, attrs = {}) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}
