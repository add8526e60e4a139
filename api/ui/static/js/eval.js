"use strict";
/* One eval: its runs with their counts, and a run's output items (?run=<id>, the runs'
   report_url). */
(() => {
  const { api, listAll, el, time, num, badge } = Lathe;
  const evalId = document.getElementById("eval").dataset.evalId;
  const selected = new URLSearchParams(location.search).get("run");

  function byCriterion(run) {
    return run.per_testing_criteria_results.map((r) => `${r.testing_criteria}: ${r.passed}/${r.passed + r.failed}`).join(", ");
  }
  function runRow(run) {
    const c = run.result_counts;
    return el("tr", { "data-run": run.id, class: run.id === selected ? "on" : "" },
      el("td", {}, el("a", { href: `/ui/evals/${evalId}?run=${run.id}` }, run.name || run.id)),
      el("td", {}, run.model || "—"), el("td", {}, badge(run.status)),
      el("td", {}, num(c.passed)), el("td", {}, num(c.failed)), el("td", {}, num(c.errored)),
      el("td", {}, byCriterion(run)), el("td", {}, time(run.created_at)));
  }
  function itemRow(item) {
    const output = item.sample && item.sample.output && item.sample.output[0];
    return el("tr", { "data-item": item.id },
      el("td", {}, String(item.datasource_item_id)), el("td", {}, badge(item.status)),
      el("td", {}, el("code", {}, JSON.stringify(item.datasource_item))),
      el("td", {}, output ? output.content : (item.sample && item.sample.error ? item.sample.error.message : "—")),
      el("td", {}, item.results.map((r) => `${r.name}: ${r.score.toFixed(2)} ${r.passed ? "✓" : "✗"}`).join(", ")));
  }
  async function load() {
    const ev = await api(`/evals/${evalId}`);
    document.getElementById("eval-name").textContent = ev.name || ev.id;
    document.getElementById("eval-summary").replaceChildren(
      el("dt", {}, "Testing criteria"), el("dd", {}, ev.testing_criteria.map((c) => `${c.name} (${c.type})`).join(", ")),
      el("dt", {}, "Created"), el("dd", {}, time(ev.created_at)));
    const runs = await listAll(`/evals/${evalId}/runs`);
    document.querySelector("#runs-table tbody").replaceChildren(...runs.map(runRow));
    if (selected) {
      document.getElementById("run-items").hidden = false;
      document.getElementById("run-id").textContent = selected;
      const items = await listAll(`/evals/${evalId}/runs/${selected}/output_items`);
      document.querySelector("#items-table tbody").replaceChildren(...items.map(itemRow));
    }
  }
  load().catch((err) => Lathe.flash(err.message));
})();
