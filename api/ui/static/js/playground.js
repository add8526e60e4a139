"use strict";
/* Playground: one conversation sent to one or two models side by side (e.g. the base and the
   tuned model, or a checkpoint), streamed from POST /v1/chat/completions. */
(() => {
  const { listAll, el, raw, sseFrames } = Lathe;
  const params = new URLSearchParams(location.search);
  const panes = ["a", "b"].map((side) => ({
    select: document.getElementById(`model-${side}`),
    transcript: document.getElementById(`transcript-${side}`),
    history: [],
  }));
  const compare = document.getElementById("compare");

  function options() {
    const value = (id) => document.getElementById(id).value.trim();
    const out = { temperature: Number(value("temperature")), top_p: Number(value("top_p")),
                  max_tokens: Number(value("max_tokens")) };
    if (value("seed")) out.seed = Number(value("seed"));
    if (value("stop")) out.stop = value("stop");
    return out;
  }

  async function ask(pane, prompt) {
    pane.history.push({ role: "user", content: prompt });
    pane.transcript.append(el("div", { class: "msg user" }, prompt));
    // a spinner until the first token: loading a model takes seconds, an empty bubble looked dead
    const answer = el("div", { class: "msg assistant pending" }, el("span", { class: "spinner", "aria-label": "waiting for the model" }));
    pane.transcript.append(answer);
    const system = document.getElementById("system").value.trim();
    const messages = system ? [{ role: "system", content: system }, ...pane.history] : pane.history;
    try {
      const response = await raw("/chat/completions", {
        method: "POST", json: { model: pane.select.value, messages, stream: true, ...options() },
      });
      for await (const frame of sseFrames(response)) {
        if (frame.data === "[DONE]") break;
        const delta = JSON.parse(frame.data).choices[0]?.delta?.content;
        if (delta) {
          if (answer.classList.contains("pending")) { answer.classList.remove("pending"); answer.textContent = ""; }
          answer.textContent += delta;
        }
      }
      if (answer.classList.contains("pending")) { answer.classList.remove("pending"); answer.textContent = ""; }
      answer.dataset.done = "true";
      pane.history.push({ role: "assistant", content: answer.textContent });
    } catch (err) {
      answer.className = "msg error";
      answer.textContent = err.message;
      answer.dataset.done = "true";
      pane.history.pop();
    }
  }

  function layout() {
    document.getElementById("pane-b").hidden = !compare.checked;
    document.querySelector(".panes").classList.toggle("single", !compare.checked);
  }

  async function fillModels() {
    const models = (await listAll("/models")).filter((m) => m.task === "causal_lm");
    const ids = models.map((m) => m.id);
    const wanted = [params.get("model"), params.get("compare")];
    for (const id of wanted) if (id && !ids.includes(id)) ids.push(id);  // a checkpoint
    panes.forEach((pane, i) => {
      pane.select.replaceChildren(...ids.map((id) => el("option", { value: id }, id)));
      pane.select.value = wanted[i] || ids[i] || ids[0];
    });
    if (params.has("model") && !params.has("compare")) compare.checked = false;
    layout();
  }

  compare.addEventListener("change", layout);
  document.getElementById("clear").addEventListener("click", () => {
    panes.forEach((p) => { p.history = []; p.transcript.replaceChildren(); });
  });
  document.getElementById("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const prompt = document.getElementById("prompt");
    const text = prompt.value.trim();
    if (!text) return;
    prompt.value = "";
    const active = compare.checked ? panes : panes.slice(0, 1);
    active.forEach((pane) => ask(pane, text));
  });
  fillModels().catch((err) => Lathe.flash(err.message));
})();
