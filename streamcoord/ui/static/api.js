// The public HTTP API, with the token the user pasted (kept in sessionStorage for this tab).
const TOKEN_KEY = "streamcoord.token";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

function headers(extra = {}) {
  const value = token.get();
  return value ? { ...extra, Authorization: `Bearer ${value}` } : extra;
}

// A run id holds "/" (kept: the API's route takes a path) and maybe "#" (escaped).
export const runPath = (runId) => `/api/v1/runs/${runId.split("/").map(encodeURIComponent).join("/")}`;

export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: headers({ Accept: "application/json" }) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data || {});
  return data;
}

export const query = (params) => {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return entries.length ? `?${new URLSearchParams(entries)}` : "";
};

// Server-Sent Events over fetch: EventSource cannot send the Authorization header.
// Calls onEvent(kind, data) per event; reconnects after a pause until the signal aborts.
export function follow(params, onEvent, signal, onState = () => {}) {
  let delay = 500;
  const once = async () => {
    const response = await fetch(`/api/v1/stream${query(params)}`, {
      headers: headers({ Accept: "text/event-stream" }), signal,
    });
    if (!response.ok) throw new ApiError(response.status, {});
    onState(true);
    delay = 500;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let kind = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) kind = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) onEvent(kind, JSON.parse(data.join("\n")));
      }
    }
  };
  (async () => {
    while (!signal.aborted) {
      try {
        await once();
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ApiError && error.status === 401) return onState(false, error);
      }
      onState(false);
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10000);
    }
  })();
}
