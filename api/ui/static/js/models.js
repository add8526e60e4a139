"use strict";
/* Models: base and fine-tuned, each fine-tune's lineage (the job that made it and the model
   it was trained from, back to a base), and downloads of the weights. */
(() => {
  const { listAll, el, time } = Lathe;

  /* base → job → model, back to the base model: a checkpoint belongs to its job's model, a
     continued fine-tune names the fine-tune it started from as its base. */
  function lineage(model, byId, jobOf) {
    const chain = [];
    for (let m = model; m && m.base_model; m = byId.get(m.base_model)) {
      const step = m.id.match(/:ckpt-step-(\d+)$/);
      const job = jobOf.get(step ? m.id.slice(0, step.index) : m.id);
      const made = job ? el("a", { href: `/ui/jobs/${job.id}` }, job.id) : "a job";
      chain.unshift(m.base_model, " → ", made, step ? ` (step ${step[1]})` : "", m === model ? "" : " → ");
    }
    return chain.length ? chain : "—";
  }

  function downloads(m) {
    if (!m.base_model) return "";
    const safe = m.id.replace(/[^A-Za-z0-9_.-]+/g, "_");
    const button = (label, query, name) => el("button", {
      class: "download", onclick: () => Lathe.download(`/models/${m.id}/content${query}`, name)
        .catch((err) => Lathe.flash(err.message)),
    }, label);
    const parts = [button("Download adapter", "", `${safe}.zip`)];
    if (m.adapter_type !== "full") parts.push(" ", button("Download merged", "?format=merged", `${safe}-merged.zip`));
    if (m.task === "causal_lm") {
      parts.push(" ", el("a", { href: `/ui/playground?model=${encodeURIComponent(m.id)}&compare=${encodeURIComponent(m.base_model)}` }, "Chat"));
    }
    return el("span", { class: "nowrap" }, parts);
  }

  async function load() {
    const [models, jobs] = await Promise.all([listAll("/models"), listAll("/fine_tuning/jobs")]);
    const byId = new Map(models.map((m) => [m.id, m]));
    const jobOf = new Map(jobs.filter((j) => j.fine_tuned_model).map((j) => [j.fine_tuned_model, j]));
    document.querySelector("#models-table tbody").replaceChildren(...models.map((m) =>
      el("tr", { "data-model": m.id },
        el("td", {}, m.id), el("td", {}, !m.base_model ? "base" : /:ckpt-step-\d+$/.test(m.id) ? "checkpoint" : "fine-tuned"), el("td", {}, m.task),
        el("td", {}, m.adapter_type || "—"), el("td", {}, lineage(m, byId, jobOf)),
        el("td", {}, time(m.created)), el("td", {}, downloads(m)))));
  }

  load().catch((err) => Lathe.flash(err.message));
})();
