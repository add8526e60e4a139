"use strict";
/* One dataset: its file object and the dry-run report of POST /v1/files/{id}/validate
   (token histogram, errors by line, duplicates, truncation, preview with trained spans). */
(() => {
  const { api, listAll, el, num, badge } = Lathe;
  const fileId = document.getElementById("dataset").dataset.fileId;
  let histogram = null;

  function pairs(items) {
    return items.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]);
  }

  async function loadFile() {
    const f = await api(`/files/${fileId}`);
    document.getElementById("file-name").textContent = f.filename;
    document.getElementById("train-this").hidden = f.status !== "processed";
    document.getElementById("file-status").replaceWith(Object.assign(badge(f.status), { id: "file-status" }));
    document.getElementById("file-summary").replaceChildren(...pairs([
      ["Id", f.id], ["Format", f.format || "—"], ["Examples", num(f.n_examples)],
      ["Bytes", num(f.bytes)], ["SHA-256", f.sha256 || "—"], ["Details", f.status_details || "—"],
    ]));
  }

  async function loadModels() {
    const models = await listAll("/models");
    document.getElementById("v-model").replaceChildren(
      ...models.map((m) => el("option", { value: m.id }, m.id)));
  }

  function render(r) {
    document.getElementById("report").hidden = false;
    document.getElementById("report-summary").replaceChildren(...pairs([
      ["Format", r.format || "—"], ["Usable", r.ok ? "yes" : "no"], ["Examples", num(r.n_examples)],
      ["Estimate", `${r.estimate.n_epochs} epochs × ${num(r.estimate.tokens_per_epoch)} tokens ≈ ` +
                   `${r.estimate.seconds.toFixed(1)} s`],
      ["Truncated", `${r.tokens.n_truncated} sequences over ${r.tokens.max_seq_length} tokens ` +
                    `(${num(r.tokens.truncated_tokens)} tokens lost, ${r.tokens.n_skipped} skipped)`],
    ]));
    const t = r.tokens;
    document.getElementById("token-stats").replaceChildren(...pairs([
      ["Sequences", num(t.n_sequences)], ["Total / trained", `${num(t.total_tokens)} / ${num(t.trained_tokens)}`],
      ["min · p50 · p95 · max", [t.min, t.p50, t.p95, t.max].map(num).join(" · ")], ["mean", num(t.mean)],
    ]));
    const box = document.getElementById("histogram");
    if (histogram) histogram.destroy();
    box.replaceChildren();
    const edges = t.histogram.edges;
    const digits = edges.length > 1 && edges[1] - edges[0] < 5 ? 1 : 0;  // short files: narrow bins
    const ticks = t.histogram.counts.map((_, i) => edges[i].toFixed(digits));
    const labels = ticks.map((lo, i) => `${lo}–${edges[i + 1].toFixed(digits)}`);
    histogram = Lathe.barChart(box, "sequences by length", ticks, labels, t.histogram.counts);
    document.getElementById("error-count").textContent = `(${r.error_count}, ${r.warning_count} warnings)`;
    const issues = [...r.errors, ...r.warnings];
    document.querySelector("#errors tbody").replaceChildren(...issues.map((e) =>
      el("tr", {}, el("td", {}, e.line), el("td", {}, e.field || "—"), el("td", {}, e.message), el("td", {}, e.code))));
    if (!issues.length) document.querySelector("#errors tbody").append(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "None: every line is usable.")));
    const d = r.duplicates;
    document.getElementById("duplicates").textContent =
      `${d.exact} exact` + (d.exact_pairs.length ? ` (${d.exact_pairs.map((p) => `line ${p.line} = ${p.duplicate_of}`).join(", ")})` : "") +
      `, ${d.near} near (similarity ≥ ${d.near_threshold})`;
    document.getElementById("data-notes").replaceChildren(
      el("li", {}, `${r.data.n_train} train, ${r.data.n_validation} validation, ${r.data.n_test} test, ${r.data.n_dropped} dropped`),
      ...r.data.notes.map((n) => el("li", {}, n)));
    document.getElementById("preview").replaceChildren(...r.preview.map((p) => el("div", {},
      el("div", { class: "muted" }, `line ${p.line} · ${p.sequence} · ${p.n_tokens} tokens, ${p.n_trained} trained` +
                                   (p.truncated ? " · truncated" : "")),
      el("div", { class: "preview-seq" },
         p.segments.map((s) => (s.trained ? el("mark", { class: "trained" }, s.text) : s.text))))));
  }

  document.getElementById("validate-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const maxSeq = document.getElementById("v-max-seq").value.trim();
    const request = {
      model: document.getElementById("v-model").value,
      method: { type: document.getElementById("v-method").value },
      hyperparameters: { max_seq_length: maxSeq ? Number(maxSeq) : "auto" },
      data: { dedupe: document.getElementById("v-dedupe").checked },
    };
    try {
      render(await api(`/files/${fileId}/validate`, { method: "POST", json: request }));
      Lathe.flash("");
    } catch (err) {
      Lathe.flash(err.message);
    }
  });
  Promise.all([loadFile(), loadModels()]).catch((err) => Lathe.flash(err.message));
})();
