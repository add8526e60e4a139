/* Shared by every dashboard page: the API key, calls to the public /v1 API, server-sent
   events over fetch (EventSource cannot send the Authorization header), small DOM helpers,
   and charts (drawn by the vendored uPlot; this file only configures it). */
"use strict";

const Lathe = (() => {
  const KEY = "lathe.apiKey";

  function key() {
    return sessionStorage.getItem(KEY) || localStorage.getItem(KEY);
  }

  function signIn(value, remember) {
    (remember ? localStorage : sessionStorage).setItem(KEY, value);
  }

  function signOut() {
    sessionStorage.removeItem(KEY);
    localStorage.removeItem(KEY);
  }

  function toSignIn() {
    const next = location.pathname + location.search;
    location.assign("/ui/signin?next=" + encodeURIComponent(next));
  }

  class ApiError extends Error {
    constructor(status, body) {
      const err = (body && body.error) || {};
      super((err.message || `HTTP ${status}`) + (err.param ? ` (${err.param})` : ""));
      this.status = status;
      this.param = err.param;
    }
  }

  function headers(extra = {}) {
    return { Authorization: "Bearer " + key(), ...extra };
  }

  /* fetch() against /v1 with the key; JSON in and out; an error envelope becomes ApiError. */
  async function raw(path, { method = "GET", json, body, signal, extraHeaders } = {}) {
    const h = headers(extraHeaders);
    if (json !== undefined) {
      h["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    }
    const response = await fetch("/v1" + path, { method, headers: h, body, signal });
    if (response.status === 401) {
      signOut();
      toSignIn();
    }
    if (!response.ok) {
      throw new ApiError(response.status, await response.json().catch(() => null));
    }
    return response;
  }

  async function api(path, options) {
    return (await raw(path, options)).json();
  }

  /* Every page of a list endpoint, following has_more / last_id. */
  async function listAll(path, limit = 100) {
    const items = [];
    let after = null;
    for (;;) {
      const sep = path.includes("?") ? "&" : "?";
      const page = await api(`${path}${sep}limit=${limit}` + (after ? `&after=${after}` : ""));
      items.push(...page.data);
      if (!page.has_more || !page.data.length) return items;
      after = page.last_id;
    }
  }

  /* Parse a text/event-stream body into {id, data} frames. */
  async function* sseFrames(response) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const frame = { id: null, data: [] };
        for (const line of block.split("\n")) {
          if (!line || line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "id") frame.id = text;
          else if (field === "data") frame.data.push(text);
        }
        if (frame.data.length) yield { id: frame.id, data: frame.data.join("\n") };
      }
    }
  }

  /* A job's events, oldest first, live; reconnects with Last-Event-ID when the connection
     drops, and resolves once the server says [DONE] (the job has finished). */
  async function followEvents(jobId, onEvent, signal) {
    let lastId = null;
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        const extraHeaders = lastId ? { "Last-Event-ID": lastId } : {};
        const response = await raw(`/fine_tuning/jobs/${jobId}/events?stream=true`, {
          signal, extraHeaders,
        });
        for await (const frame of sseFrames(response)) {
          if (frame.data === "[DONE]") return;
          lastId = frame.id || lastId;
          attempt = 0;
          onEvent(JSON.parse(frame.data));
        }
      } catch (err) {
        if (signal.aborted || err instanceof ApiError) throw err;
      }
      await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** attempt)));
    }
  }

  /* el("a", {href: "/x", class: "y"}, "text", childNode) */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function time(ts) {
    return ts ? new Date(ts * 1000).toLocaleString() : "—";
  }

  function num(v) {
    if (typeof v !== "number") return v === null || v === undefined ? "—" : String(v);
    return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  }

  function badge(status) {
    return el("span", { class: "badge " + status }, status);
  }

  function flash(message) {
    const box = document.getElementById("flash");
    box.textContent = message;
    box.hidden = !message;
  }

  /* Save what an authenticated GET returns (file contents, model zips) as a download. */
  async function download(path, filename) {
    const blob = await (await raw(path)).blob();
    const url = URL.createObjectURL(blob);
    el("a", { href: url, download: filename }).click();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  const COLORS = ["#2f5fd0", "#d0742f", "#1f8a4c", "#a23fc0", "#c0392b", "#3a9bb8", "#6b7385"];

  /* A uPlot line chart over steps; points shown so sparse series (validation) read well. */
  /* An axis tick or legend value: exponents for small values (a learning rate of 2e-4
     read "0" on every tick), at most 4 significant digits otherwise. */
  function tick(v) {
    if (v === null || v === undefined) return "";
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a < 1e-3 || a >= 1e6) return v.toExponential(1);
    return Number(v.toPrecision(4)).toLocaleString();
  }

  /* Legends show the hovered point's values, and the last point's when nothing is hovered
     (uPlot's default is "--" until the pointer is over the chart). */
  function lastValue(u, v, si, i) {
    if (i !== null && i !== undefined) return tick(v);
    const column = u.data[si];
    for (let k = column.length - 1; k >= 0; k--) if (column[k] !== null && column[k] !== undefined) return tick(column[k]);
    return "";
  }

  function lineChart(parent, title, names, data) {
    const opts = {
      title, width: 420, height: 240,
      scales: { x: { time: false } },
      axes: [{ label: "step" }, { size: 64, values: (u, splits) => splits.map(tick) }],
      series: [{ label: "step", value: lastValue }, ...names.map((label, i) => ({
        label, stroke: COLORS[i % COLORS.length], spanGaps: true, points: { show: true, size: 4 },
        value: lastValue,
      }))],
    };
    const box = el("div", { class: "chart", "data-chart": title });
    parent.append(box);
    return new uPlot(opts, data, box);
  }

  /* Bars over labelled bins: `ticks` label the axis (short), `labels` the legend (full). */
  function barChart(parent, title, ticks, labels, counts) {
    const opts = {
      title, width: 560, height: 240,
      scales: { x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] } },  // whole bars
      axes: [{ label: "tokens", space: 50, values: (u, at) => at.map((t) => ticks[t] ?? "") }, {}],
      series: [{ label: "tokens", value: (u, i) => (i === null ? "--" : labels[i]) },
               { label: "sequences", fill: "#2f5fd066", stroke: "#2f5fd0",
                     paths: uPlot.paths.bars({ size: [0.9] }), points: { show: false } }],
    };
    const box = el("div", { class: "chart", "data-chart": title });
    parent.append(box);
    return new uPlot(opts, [labels.map((_, i) => i), counts], box);
  }

  function requireKey() {
    if (document.body.dataset.page !== "signin" && !key()) toSignIn();
    const out = document.getElementById("signout");
    if (out) out.addEventListener("click", () => { signOut(); toSignIn(); });
  }

  requireKey();
  return {
    key, signIn, signOut, api, raw, listAll, followEvents, sseFrames, el, time, num, badge,
    flash, download, lineChart, barChart, ApiError, tick,
  };
})();
