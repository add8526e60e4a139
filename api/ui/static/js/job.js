"use strict";
/* One job: its summary and buttons, live metric charts and event log from the SSE stream
   (GET /v1/fine_tuning/jobs/{id}/events?stream=true), checkpoints, evaluation, result files. */
(() => {
  const { api, el, time, num, badge } = Lathe;
  const jobId = document.getElementById("job").dataset.jobId;
  const TERMINAL = ["succeeded", "failed", "cancelled"];
  // metric name → the chart it is drawn in (first match wins); each method brings its own keys
  const GROUPS = [
    // KL before Reward: "rewards/kl"-style names are KL; "^kl" missed mean_kl, objective/kl…
    ["Loss", /loss$/], ["Accuracy / F1", /accuracy|f1/], ["KL / entropy", /kl|entropy/],
    ["Reward", /reward|margin|score/], ["Perplexity", /perplexity/], ["Learning rate", /^learning_rate$/],
    ["Gradient norm", /grad_norm/], ["Other", /./],
  ];
  const NOT_PLOTTED = new Set(["step", "total_steps", "epoch"]);

  class MetricCharts {
    constructor(box) {
      this.box = box;
      this.rows = [];
      this.keys = new Map(GROUPS.map(([title]) => [title, []]));
      this.charts = new Map();
    }

    add(data) {
      this.rows.push(data);
      let fresh = false;
      for (const [name, value] of Object.entries(data)) {
        if (typeof value !== "number" || NOT_PLOTTED.has(name)) continue;
        const [title] = GROUPS.find(([, pattern]) => pattern.test(name));
        const keys = this.keys.get(title);
        if (!keys.includes(name)) fresh = keys.push(name) > 0;
      }
      fresh ? this.rebuild() : this.update();
      this.box.dataset.points = this.rows.length;
      document.getElementById("metrics-count").textContent = `(${this.rows.length} steps)`;
      progress();
    }

    series(keys) {
      return [this.rows.map((r) => r.step), ...keys.map((k) => this.rows.map((r) => r[k] ?? null))];
    }

    rebuild() {  // a new metric appeared: draw every chart again with its full series set
      this.charts.forEach((chart) => chart.destroy());
      this.charts.clear();
      this.box.replaceChildren();
      for (const [title, keys] of this.keys) {
        if (keys.length) this.charts.set(title, Lathe.lineChart(this.box, title, keys, this.series(keys)));
      }
    }

    update() {
      for (const [title, chart] of this.charts) chart.setData(this.series(this.keys.get(title)));
    }
  }

  const charts = new MetricCharts(document.getElementById("charts"));
  const log = document.querySelector("#events tbody");
  let job = null;

  function summary(j) {
    const file = (id) => id ? el("a", { href: `/ui/datasets/${id}` }, id) : "—";
    const items = [
      ["Base model", j.model], ["Method", j.method.type], ["Adapter", adapterText(j.adapter)],
      ["Training file", file(j.training_file)], ["Validation file", file(j.validation_file)],
      ["Fine-tuned model", j.fine_tuned_model || "—"], ["Suffix", j.user_provided_suffix || "—"],
      ["Seed", j.seed], ["Created", time(j.created_at)], ["Finished", time(j.finished_at)],
      ["Trained tokens", num(j.trained_tokens)], ["Depends on", (j.depends_on || []).join(", ") || "—"],
    ];
    return items.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]);
  }

  // what each adapter type is configured by (the job object also carries the others' defaults)
  const ADAPTER_FIELDS = {
    lora: ["r", "alpha", "dropout", "target_modules"], qlora: ["r", "alpha", "dropout", "target_modules"],
    ia3: ["target_modules"], prompt_tuning: ["num_virtual_tokens", "prompt_tuning_init_text"],
    prefix_tuning: ["num_virtual_tokens"], full: [],
  };

  function adapterText(adapter) {
    const type = adapter.type || "lora";
    const parts = (ADAPTER_FIELDS[type] || Object.keys(adapter))
      .filter((k) => adapter[k] !== undefined && adapter[k] !== null)
      .map((k) => `${k} ${Array.isArray(adapter[k]) ? adapter[k].join(", ") : adapter[k]}`);
    return [type, ...parts].join(" · ");
  }

  function progress() {  // "Step 77/300 · ETA 12:40" beside the status while the job runs
    const box = document.getElementById("job-progress");
    const last = charts.rows[charts.rows.length - 1];
    const running = job && job.status === "running";
    box.hidden = !running || !last || !last.total_steps;
    if (box.hidden) return;
    const eta = job.estimated_finish ? ` · ETA ${time(job.estimated_finish)}` : "";
    box.textContent = `Step ${last.step}/${last.total_steps}${eta}`;
  }

  function render(j) {
    job = j;
    progress();
    document.getElementById("job-status").replaceWith(
      Object.assign(badge(j.status), { id: "job-status" }));
    document.getElementById("job-summary").replaceChildren(...summary(j));
    const error = document.getElementById("job-error");
    error.hidden = !j.error;
    error.textContent = j.error ? `${j.error.code}: ${j.error.message}` : "";
    const done = TERMINAL.includes(j.status);
    document.getElementById("btn-cancel").disabled = done;
    document.getElementById("btn-pause").disabled = done || j.status === "paused";
    document.getElementById("btn-resume").disabled = j.status !== "paused";
    const chat = document.getElementById("btn-chat");
    chat.hidden = !j.fine_tuned_model;
    if (j.fine_tuned_model) chat.href = playground(j.fine_tuned_model, baseOf(j));
    document.querySelector("#hyperparameters tbody").replaceChildren(
      ...Object.entries(j.hyperparameters).map(([k, v]) =>
        el("tr", {}, el("td", {}, k), el("td", {}, typeof v === "object" ? JSON.stringify(v) : num(v)))));
    renderEvaluation(j.evaluation);
    renderResultFiles(j.result_files);
  }

  let base = null;  // the fine-tune's base (GET /v1/models/{id}), which the playground compares
  function baseOf(j) {
    if (base === null && j.fine_tuned_model) {
      base = j.model;  // until the model answers; a continued job's `model` is its parent
      api(`/models/${encodeURIComponent(j.fine_tuned_model)}`)
        .then((m) => { base = m.base_model || j.model; render(job); loadCheckpoints(); })
        .catch(() => {});
    }
    return base || j.model;
  }

  function playground(model, compare) {
    return `/ui/playground?model=${encodeURIComponent(model)}&compare=${encodeURIComponent(compare)}`;
  }

  function evaluationTable(base, tuned) {
    const names = [...new Set([...Object.keys(base || {}), ...Object.keys(tuned || {})])];
    return el("table", { class: "grid small evaluation" },
      el("thead", {}, el("tr", {}, ["metric", "base", "tuned", "change"].map((h) => el("th", {}, h)))),
      el("tbody", {}, names.map((n) => {
        const [b, t] = [base?.[n], tuned?.[n]];
        const delta = typeof b === "number" && typeof t === "number" ? t - b : null;
        const lowerIsBetter = /loss|perplexity/.test(n);
        const good = delta !== null && (lowerIsBetter ? delta < 0 : delta > 0);
        return el("tr", {}, el("td", {}, n), el("td", {}, num(b)), el("td", {}, num(t)),
          el("td", { class: delta === null ? "" : good ? "delta-good" : "delta-bad" },
             delta === null ? "—" : (delta > 0 ? "+" : "") + num(delta)));
      })));
  }

  function renderEvaluation(evaluation) {
    document.getElementById("evaluation-section").hidden = !evaluation;
    if (!evaluation) return;
    const parts = [el("h3", {}, "Validation"), evaluationTable(evaluation.base, evaluation.tuned)];
    if (evaluation.test) {
      parts.push(el("h3", {}, `Test set (${evaluation.test.examples} examples)`),
                 evaluationTable(evaluation.test.base, evaluation.test.tuned));
    }
    document.getElementById("evaluation").replaceChildren(...parts);
  }

  let shownFiles = "";
  async function renderResultFiles(ids) {
    if (!ids.length || ids.join() === shownFiles) return;
    shownFiles = ids.join();
    const list = document.getElementById("result-files");
    const files = await Promise.all(ids.map((id) => api(`/files/${id}`)));
    list.replaceChildren(...files.map((f) => {
      const item = el("li", {}, el("button", {
        class: "download", onclick: () => Lathe.download(`/files/${f.id}/content`, f.filename),
      }, `Download ${f.filename}`), ` ${num(f.bytes)} bytes`);
      if (f.filename.endsWith(".png")) {  // the loss curve, shown too (the fetch carries the key)
        Lathe.raw(`/files/${f.id}/content`).then((r) => r.blob()).then((blob) =>
          item.append(el("br"), el("img", { src: URL.createObjectURL(blob), alt: f.filename, width: 480 })));
      }
      return item;
    }));
  }

  async function loadCheckpoints() {
    const page = await api(`/fine_tuning/jobs/${jobId}/checkpoints?limit=100`);
    const body = document.querySelector("#checkpoints tbody");
    body.replaceChildren(...page.data.map((c) => el("tr", {},
      el("td", {}, c.step_number),
      el("td", {}, c.fine_tuned_model_checkpoint),
      el("td", {}, Object.entries(c.metrics).map(([k, v]) => `${k}=${num(v)}`).join(", ")),
      el("td", {}, el("a", { class: "chat-checkpoint", href: playground(c.fine_tuned_model_checkpoint, baseOf(job)) },
                     "Chat with this")))));
  }

  let pending = null;
  function refreshSoon() {  // a burst of events makes one refetch
    clearTimeout(pending);
    pending = setTimeout(refresh, 300);
  }

  async function refresh() {
    render(await api(`/fine_tuning/jobs/${jobId}`));
    await loadCheckpoints();
  }

  function onEvent(event) {
    log.prepend(el("tr", { class: event.level },
      el("td", {}, time(event.created_at)), el("td", {}, event.level), el("td", {}, event.message)));
    if (event.type === "metrics" && event.data) charts.add(event.data);
    else refreshSoon();
  }

  for (const action of ["cancel", "pause", "resume"]) {
    document.getElementById(`btn-${action}`).addEventListener("click", async () => {
      try {
        render(await api(`/fine_tuning/jobs/${jobId}/${action}`, { method: "POST" }));
        Lathe.flash("");
      } catch (err) {
        Lathe.flash(err.message);
      }
    });
  }

  const stop = new AbortController();
  window.addEventListener("pagehide", () => stop.abort());
  refresh()
    .then(() => Lathe.followEvents(jobId, onEvent, stop.signal))
    .then(refresh)
    .catch((err) => stop.signal.aborted || Lathe.flash(err.message));
})();
