"use strict";
/* The jobs list: pages of GET /v1/fine_tuning/jobs, filtered in the browser. */
(() => {
  const { api, el, time, badge } = Lathe;
  const body = document.querySelector("#jobs-table tbody");
  const more = document.getElementById("jobs-more");
  const filters = ["f-status", "f-method", "f-text"].map((id) => document.getElementById(id));
  let jobs = [];
  let after = null;

  function shown(job) {
    const [status, method, text] = filters.map((f) => f.value.trim().toLowerCase());
    const haystack = [job.id, job.model, job.user_provided_suffix, job.fine_tuned_model,
                      job.training_file].join(" ").toLowerCase();
    return (!status || job.status === status) && (!method || job.method.type === method) &&
           (!text || haystack.includes(text));
  }

  function row(job) {
    return el("tr", { "data-job": job.id },
      el("td", {}, el("a", { href: `/ui/jobs/${job.id}` }, job.id)),
      el("td", {}, badge(job.status)),
      el("td", {}, job.model),
      el("td", {}, job.method.type),
      el("td", {}, job.adapter.type || "lora"),
      el("td", {}, job.fine_tuned_model || "—"),
      el("td", {}, time(job.created_at)),
      el("td", {}, time(job.finished_at)));
  }

  function render() {
    body.replaceChildren(...jobs.filter(shown).map(row));
    document.getElementById("jobs-empty").hidden = jobs.length > 0;
  }

  async function load() {
    const page = await api("/fine_tuning/jobs?limit=50" + (after ? `&after=${after}` : ""));
    jobs.push(...page.data);
    after = page.last_id;
    more.hidden = !page.has_more;
    render();
  }

  filters.forEach((f) => ["input", "change"].forEach((e) => f.addEventListener(e, render)));
  more.addEventListener("click", load);
  load().catch((err) => Lathe.flash(err.message));
})();
