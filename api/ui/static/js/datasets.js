"use strict";
/* Datasets: the organization's files, and uploads with progress (XMLHttpRequest reports
   upload progress; fetch does not). */
(() => {
  const { listAll, el, time, num, badge } = Lathe;
  const body = document.querySelector("#files-table tbody");
  const DATASETS = ["fine-tune", "evals"];

  function row(f) {
    return el("tr", { "data-file": f.id },
      el("td", {}, el("a", { href: `/ui/datasets/${f.id}` }, f.id)),
      el("td", {}, f.filename),
      el("td", {}, badge(f.status), f.status_details ? el("div", { class: "error" }, f.status_details) : null),
      el("td", {}, f.format || "—"), el("td", {}, num(f.n_examples)), el("td", {}, num(f.bytes)),
      el("td", {}, time(f.created_at)),
      el("td", {}, f.purpose === "fine-tune" && f.status === "processed"
        ? el("a", { href: `/ui/jobs/new?training_file=${f.id}` }, "Train on this") : f.purpose));
  }

  async function load() {
    // datasets only: a job's result files (metrics CSVs, loss curves) are on its own page
    const files = (await listAll("/files")).filter((f) => DATASETS.includes(f.purpose));
    body.replaceChildren(...files.map(row));
  }

  function upload(file) {
    const progress = document.getElementById("upload-progress");
    const status = document.getElementById("upload-status");
    const data = new FormData();
    data.append("purpose", "fine-tune");
    data.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/files");
    xhr.setRequestHeader("Authorization", "Bearer " + Lathe.key());
    progress.hidden = false;
    progress.value = 0;
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) progress.value = (100 * e.loaded) / e.total;
      status.textContent = `Uploading… ${num(e.loaded)} bytes`;
    });
    xhr.upload.addEventListener("load", () => { status.textContent = "Validating…"; });
    xhr.addEventListener("load", () => {
      const reply = JSON.parse(xhr.responseText || "{}");
      progress.value = 100;
      status.textContent = xhr.status === 200
        ? `Uploaded ${reply.filename}: ${reply.status}` + (reply.status_details ? ` — ${reply.status_details}` : "")
        : `Upload failed: ${reply.error ? reply.error.message : xhr.status}`;
      status.dataset.file = reply.id || "";
      load();
    });
    xhr.addEventListener("error", () => { status.textContent = "Upload failed: network error"; });
    xhr.send(data);
  }

  document.getElementById("upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    upload(document.getElementById("upload-file").files[0]);
  });
  load().catch((err) => Lathe.flash(err.message));
})();
