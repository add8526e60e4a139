"use strict";
/* The New job form: fills the model and file choices from the API, builds the very JSON body
   POST /v1/fine_tuning/jobs takes (only what differs from the defaults), shows it with a curl
   line, and posts it. */
(() => {
  const { api, listAll, el } = Lathe;
  const form = document.getElementById("job-form");
  const methodType = document.getElementById("method-type");
  const params = new URLSearchParams(location.search);

  function parse(text) {  // numbers, booleans, lists and objects as JSON; anything else a string
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }

  function set(body, path, value) {
    const keys = path.split(".");
    let node = body;
    for (const k of keys.slice(0, -1)) node = node[k] ??= {};
    node[keys.at(-1)] = value;
  }

  function body() {
    const out = { model: form.model.value, training_file: form.training_file.value };
    const optional = { validation_file: form.validation_file.value, suffix: form.suffix.value.trim(),
                       seed: form.seed.value.trim() };
    for (const [name, value] of Object.entries(optional)) {
      if (value) out[name] = name === "seed" ? parse(value) : value;
    }
    out.method = { type: methodType.value };
    out.adapter = { type: document.querySelector('[data-path="adapter.type"]').value };
    for (const input of form.querySelectorAll("[data-path]")) {
      if (input.closest("fieldset:disabled") || input.disabled) continue;  // another method's, adapter's
      const value = input.value.trim();
      if (!value || value === input.dataset.default) continue;
      set(out, input.dataset.path, parse(value));
    }
    return out;
  }

  function show() {
    const json = JSON.stringify(body(), null, 2);
    document.getElementById("job-json").textContent = json;
    document.getElementById("job-curl").textContent =
      `curl -s ${location.origin}/v1/fine_tuning/jobs -H "Authorization: Bearer $LATHE_API_KEY" \\\n` +
      `  -H 'Content-Type: application/json' -d '${JSON.stringify(body())}'`;
  }

  // the adapter fields each type takes (prompt-tuning fields were offered for LoRA too)
  const ADAPTER_FIELDS = {
    lora: ["r", "alpha", "dropout", "target_modules"], qlora: ["r", "alpha", "dropout", "target_modules"],
    ia3: ["target_modules"], prompt_tuning: ["num_virtual_tokens", "prompt_tuning_init_text"],
    prefix_tuning: ["num_virtual_tokens"], full: [],
  };

  function pickAdapter() {
    const type = document.querySelector('[data-path="adapter.type"]').value;
    for (const input of form.querySelectorAll('[data-path^="adapter."]')) {
      const name = input.dataset.path.slice("adapter.".length);
      if (name === "type") continue;
      const on = (ADAPTER_FIELDS[type] || []).includes(name);
      input.disabled = !on;
      input.closest(".field").hidden = !on;
    }
    show();
  }

  function pickMethod() {
    for (const block of form.querySelectorAll("fieldset.method")) {
      const on = block.dataset.method === methodType.value;
      block.hidden = !on;
      block.disabled = !on;
    }
    show();
  }

  async function fillChoices() {
    const [models, files] = await Promise.all([listAll("/models"), listAll("/files")]);
    form.model.replaceChildren(...models.map((m) =>
      el("option", { value: m.id, selected: m.id === params.get("model") },
         m.base_model ? `${m.id} (fine-tuned)` : m.id)));
    const usable = files.filter((f) => f.purpose === "fine-tune" && f.status === "processed");
    const option = (f, wanted) => el("option", { value: f.id, selected: f.id === wanted },
                                     `${f.filename} — ${f.id} (${f.n_examples} examples)`);
    form.training_file.replaceChildren(...usable.map((f) => option(f, params.get("training_file"))));
    form.validation_file.append(...usable.map((f) => option(f, null)));
    show();
  }

  form.addEventListener("input", show);
  form.addEventListener("change", show);
  methodType.addEventListener("change", pickMethod);
  document.querySelector('[data-path="adapter.type"]').addEventListener("change", pickAdapter);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = document.getElementById("job-form-error");
    try {
      const job = await api("/fine_tuning/jobs", { method: "POST", json: body() });
      location.assign(`/ui/jobs/${job.id}`);
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  });
  pickMethod();
  pickAdapter();
  fillChoices().catch((err) => Lathe.flash(err.message));
})();
