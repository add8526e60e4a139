"use strict";
/* Evals: the organization's evals (OpenAI's Evals API, /v1/evals). */
(() => {
  const { listAll, el, time } = Lathe;
  const body = document.querySelector("#evals-table tbody");
  function row(e) {
    return el("tr", { "data-eval": e.id },
      el("td", {}, el("a", { href: `/ui/evals/${e.id}` }, e.id)),
      el("td", {}, e.name || "—"),
      el("td", {}, e.testing_criteria.map((c) => `${c.name} (${c.type})`).join(", ")),
      el("td", {}, time(e.created_at)));
  }
  listAll("/evals").then((evals) => body.replaceChildren(...evals.map(row)))
    .catch((err) => Lathe.flash(err.message));
})();
