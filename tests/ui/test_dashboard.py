"""The dashboard in a real headless Chromium against a real `lathe serve`: from nothing to a
chat with a fine-tuned model without leaving the browser, every step proved on the page.

Screenshots of each page go to the test's tmp_path (their paths are printed; run with -s)."""

from __future__ import annotations

import json
import re
import time
import zipfile
from pathlib import Path

import pytest

from tests.utils.flows import capitals_jsonl

pytestmark = pytest.mark.slow


SPINNER_WATCH = """
window.sawSpinner = false;
new MutationObserver(() => {
  if (document.querySelector(".msg.assistant .spinner")) window.sawSpinner = true;
}).observe(document.body, { subtree: true, childList: true });
"""


class Page:
    """The few things the test does with the driver, each waiting for the page to catch up."""

    def __init__(self, driver, origin: str, out: Path):
        from selenium.webdriver.common.by import By

        self.d, self.origin, self.out, self.By = driver, origin, out, By
        self.requests: list[str] = []
        self.shots: list[Path] = []
        self.progress: str | None = None

    def open(self, path: str) -> None:
        self.d.get(self.origin + path)

    def css(self, selector: str):
        return self.d.find_element(self.By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list:
        return self.d.find_elements(self.By.CSS_SELECTOR, selector)

    def until(self, condition, what: str, timeout: float = 60):
        from selenium.webdriver.support.ui import WebDriverWait

        def check(_):
            try:
                return condition()
            except Exception:  # the element is not there yet, or was just redrawn
                return False

        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1).until(check)
        except Exception as err:
            self.shot("timeout")
            raise AssertionError(f"waited {timeout}s for {what}; at {self.d.current_url}") from err

    def text(self, selector: str) -> str:
        """Read in one script call: the page redraws elements (a stale handle would fail)."""
        return self.d.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : null",
            selector,
        )

    def shot(self, name: str, whole: bool = True) -> Path:
        path = self.out / f"{len(self.shots) + 1:02d}-{name}.png"
        height = self.d.execute_script("return document.documentElement.scrollHeight")
        if whole:  # the whole page, not just the window
            self.d.set_window_size(1400, max(1000, min(height + 140, 4000)))
        self.d.save_screenshot(str(path))
        self.d.set_window_size(1400, 1000)
        self.shots.append(path)
        print(f"screenshot: {path}")
        self.record_requests()
        return path

    def record_requests(self) -> None:
        for entry in self.d.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])


def set_field(page: Page, path: str, value: str) -> None:
    field = page.css(f'[data-path="{path}"]')
    field.clear()
    field.send_keys(value)


def sign_in(page: Page, key: str) -> None:
    page.open("/ui/jobs")
    page.until(lambda: "/ui/signin" in page.d.current_url, "the sign-in redirect")
    page.shot("signin")
    page.css("#api-key").send_keys(key)
    page.css("#signin-form button").click()
    page.until(lambda: page.d.current_url.endswith("/ui/jobs"), "the jobs page after sign-in")


def upload(page: Page, path: Path) -> str:
    page.open("/ui/datasets")
    page.css("#upload-file").send_keys(str(path))
    page.css("#upload-form button").click()
    page.until(lambda: "processed" in page.text("#upload-status"), "the upload to be processed")
    file_id = page.css("#upload-status").get_attribute("data-file")
    page.until(lambda: page.all(f'tr[data-file="{file_id}"]'), "the file in the list")
    page.shot("datasets-uploaded")
    return file_id


def dry_run(page: Page, file_id: str) -> None:
    page.open(f"/ui/datasets/{file_id}")
    page.until(lambda: page.all("#v-model option"), "the model choices")
    page.css("#validate-form button").click()
    page.until(lambda: page.css("#report").is_displayed(), "the dry-run report", timeout=90)
    assert page.all("#histogram canvas"), "no token histogram drawn"
    assert "4" in page.text("#report-summary")  # four examples
    assert page.all("#preview mark.trained"), "no trained span highlighted in the preview"
    page.shot("dataset-dry-run")


def dry_run_finds_the_faults(page: Page, tmp_path: Path) -> None:
    """A file with a bad row, a duplicate and broken JSON: upload says error, the dry run
    names each line."""
    rows = capitals_jsonl(tmp_path / "faulty.jsonl").read_text().splitlines()
    rows.insert(2, json.dumps({"messages": [{"role": "user", "content": "no answer"}]}))
    path = tmp_path / "faulty.jsonl"
    path.write_text("\n".join([*rows, rows[0], "{not json"]) + "\n")
    page.open("/ui/datasets")
    page.css("#upload-file").send_keys(str(path))
    page.css("#upload-form button").click()
    page.until(lambda: "error" in page.text("#upload-status"), "the upload to be refused")
    page.open(f"/ui/datasets/{page.css('#upload-status').get_attribute('data-file')}")
    page.until(lambda: page.all("#v-model option"), "the model choices")
    page.until(lambda: page.text("#file-status") == "error", "the file's status")
    assert not page.css("#train-this").is_displayed()  # a refused file cannot be trained on
    page.css("#validate-form button").click()
    page.until(lambda: page.css("#report").is_displayed(), "the dry-run report", timeout=90)
    lines = [r.text.split()[0] for r in page.all("#errors tbody tr")]
    assert lines == ["3", "7"], lines
    assert "line 6 = 1" in page.text("#duplicates")
    page.shot("dataset-dry-run-faults")


def start_job(page: Page, file_id: str) -> str:
    page.open(f"/ui/jobs/new?training_file={file_id}")
    page.until(lambda: page.css("#training_file").get_attribute("value") == file_id, "the file")
    from selenium.webdriver.support.ui import Select

    page.until(lambda: "tiny-llama" in page.text("#model"), "the base models")
    Select(page.css("#model")).select_by_value("tiny-llama")  # not the first listed base
    Select(page.css("#validation_file")).select_by_value(file_id)  # validation curves, evaluation
    page.css("#suffix").send_keys("capitals")
    page.css("#seed").send_keys("7")
    for path, value in {
        "adapter.r": "16",
        "adapter.alpha": "32",
        "adapter.dropout": "0",
        "method.supervised.hyperparameters.n_epochs": "24",
        "method.supervised.hyperparameters.learning_rate": "3e-3",
        "method.supervised.hyperparameters.batch_size": "4",
        "method.supervised.hyperparameters.checkpoint_interval": "12",
    }.items():
        set_field(page, path, value)
    prompt_only = page.css('[data-path="adapter.num_virtual_tokens"]')
    assert not prompt_only.is_displayed()  # LoRA takes no soft-prompt fields
    shown = json.loads(page.text("#job-json"))
    assert shown == {
        "model": "tiny-llama",
        "training_file": file_id,
        "validation_file": file_id,
        "suffix": "capitals",
        "seed": 7,
        "method": {
            "type": "supervised",
            "supervised": {
                "hyperparameters": {
                    "n_epochs": 24,
                    "learning_rate": 0.003,
                    "batch_size": 4,
                    "checkpoint_interval": 12,
                }
            },
        },
        "adapter": {"type": "lora", "dropout": 0},  # r 16 and alpha 32 are the defaults: not sent
    }
    assert "curl" in page.text("#job-curl")
    page.shot("new-job-form")
    page.css("#create-job").click()
    page.until(lambda: "/ui/jobs/ftjob-" in page.d.current_url, "the new job's page")
    return page.d.current_url.rsplit("/", 1)[1]


def watch_training(page: Page) -> list[tuple[str, int]]:
    """(status, points on the loss chart) as the page shows them, until the job ends; one
    screenshot mid-training."""
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = page.text("#job-status")
        points = int(page.css("#charts").get_attribute("data-points"))  # never redrawn itself
        if not seen or seen[-1] != (status, points):
            seen.append((status, points))
            if status == "running" and points >= 3 and not page.shots[-1].match("*training*"):
                page.shot("job-training")
                page.progress = page.text("#job-progress")  # "Step 3/24 · ETA …" by the status
        if status in ("succeeded", "failed", "cancelled"):
            return seen
        time.sleep(0.1)
    raise AssertionError(f"job still running after 180s: {seen[-5:]}")


def test_from_nothing_to_a_chat_with_the_fine_tuned_model(server, browser, tmp_path):
    from selenium.webdriver.support.ui import Select

    page = Page(browser, server.url, tmp_path)
    sign_in(page, server.key)
    file_id = upload(page, capitals_jsonl(tmp_path / "capitals.jsonl"))
    dry_run(page, file_id)
    dry_run_finds_the_faults(page, tmp_path)
    job_id = start_job(page, file_id)

    seen = watch_training(page)
    status, final = seen[-1]
    assert status == "succeeded", page.text("#job-error")
    live = [p for s, p in seen if s == "running" and 0 < p < final]
    assert len(set(live)) >= 2, f"the loss chart did not grow while training: {seen}"
    with server.api() as api:
        events = api.get(f"/fine_tuning/jobs/{job_id}/events", params={"limit": 100}).json()
        job = api.get(f"/fine_tuning/jobs/{job_id}").json()
    assert final == sum(e["type"] == "metrics" for e in events["data"])
    page.until(lambda: page.all("#checkpoints a.chat-checkpoint"), "the checkpoints")
    page.until(lambda: page.all("#result-files img"), "the loss curve result file")
    legend = page.text('[data-chart="Loss"]')
    assert "train_loss" in legend and "valid_loss" in legend, legend
    assert "--" not in page.text('[data-chart="Loss"] .u-legend')  # the last values, unhovered
    assert re.fullmatch(r"Step \d+/\d+( · ETA .+)?", page.progress or ""), page.progress
    ticks = page.d.execute_script("return [2e-4, 1.5e-4, 0, 0.25, 15000].map(Lathe.tick)")
    assert ticks == ["2.0e-4", "1.5e-4", "0", "0.25", "15,000"], ticks  # the LR axis
    adapter = page.text("#job-summary")
    assert "lora · r 16 · alpha 32" in adapter and "num_virtual_tokens" not in adapter, adapter
    evaluation = page.text("#evaluation")  # base vs tuned on the validation file
    assert "valid_loss" in evaluation and "base" in evaluation and "tuned" in evaluation
    assert job["hyperparameters"]["n_epochs"] == 24
    page.shot("job-succeeded")

    page.css("#checkpoints a.chat-checkpoint").click()  # the latest checkpoint
    page.until(lambda: "/ui/playground" in page.d.current_url, "the playground")
    page.until(lambda: page.all("#model-a option"), "the model choices")
    checkpoint = page.css("#model-a").get_attribute("value")
    assert checkpoint.startswith(job["fine_tuned_model"] + ":ckpt-step-"), checkpoint
    assert page.css("#model-b").get_attribute("value") == "tiny-llama"
    page.css("#prompt").send_keys("What is the capital of France?")
    page.d.execute_script(SPINNER_WATCH)
    page.css("#send").click()
    page.until(lambda: len(page.all(".msg.assistant[data-done]")) == 2, "both answers", timeout=120)
    assert page.d.execute_script("return window.sawSpinner")  # not an empty bubble meanwhile
    assert page.text("#transcript-a .msg.assistant") == "Paris"
    page.shot("playground-checkpoint-vs-base")

    page.open("/ui/models")
    row = f'tr[data-model="{job["fine_tuned_model"]}"]'
    page.until(lambda: page.all(row), "the fine-tuned model")
    assert job_id in page.text(row) and "tiny-llama" in page.text(row)
    page.css(f"{row} button.download").click()  # the adapter, saved by the browser
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", job["fine_tuned_model"])  # as models.js names it
    saved = tmp_path / "downloads" / f"{name}.zip"
    page.until(saved.exists, f"the download {saved.name}")
    assert "adapter_model.safetensors" in zipfile.ZipFile(saved).namelist()
    page.shot("models")

    with server.api() as api:
        other = api.post(
            "/fine_tuning/jobs",
            json={
                "model": "tiny-llama",
                "training_file": file_id,
                "suffix": "to-cancel",
                "method": {
                    "type": "supervised",
                    "supervised": {"hyperparameters": {"n_epochs": 500}},
                },
            },
        ).json()
    page.open(f"/ui/jobs/{other['id']}")
    page.until(lambda: page.css("#btn-pause").is_enabled(), "the pause button")
    page.css("#btn-pause").click()
    page.until(lambda: page.text("#job-status") == "paused", "the paused status")
    page.until(lambda: page.css("#btn-resume").is_enabled(), "the resume button")
    page.css("#btn-resume").click()
    page.until(lambda: "resumed" in page.text("#events"), "the resume event in the log")
    page.until(lambda: page.text("#job-status") in ("queued", "running"), "the resumed status")
    page.css("#btn-cancel").click()
    page.until(lambda: page.text("#job-status") == "cancelled", "the cancelled status")
    page.until(lambda: "cancelled" in page.text("#events"), "the cancel event in the log")
    page.shot("job-cancelled")

    page.open("/ui/jobs")
    page.until(lambda: len(page.all("#jobs-table tbody tr")) == 2, "both jobs listed")
    status = Select(page.css("#f-status"))
    status.select_by_visible_text("cancelled")
    page.until(lambda: len(page.all("#jobs-table tbody tr")) == 1, "the status filter")
    status.select_by_visible_text("any")
    page.until(lambda: len(page.all("#jobs-table tbody tr")) == 2, "the filter cleared")
    page.shot("jobs-list")

    page.open("/ui/datasets")  # datasets only: not the jobs' result files; every column named
    page.until(lambda: page.all("#files-table tbody tr"), "the datasets")
    purposes = {r.get_attribute("data-file") for r in page.all("#files-table tbody tr")}
    with server.api() as api:
        results = {
            f["id"] for f in api.get("/files").json()["data"] if f["purpose"] == "fine-tune-results"
        }
    assert results and not purposes & results
    assert page.text("#files-table thead th:last-child") == "Use"
    page.shot("datasets-only")

    page.open("/docs")
    page.until(lambda: page.all(".swagger-ui .info .title"), "Swagger UI")
    page.until(
        lambda: "Create fine tuning job" in page.text(".swagger-ui"), "operation names in words"
    )
    page.shot("docs", whole=False)

    page.record_requests()  # chrome:// (its own new-tab page), data: and blob: never leave it
    network = [u for u in page.requests if u.split(":", 1)[0] in ("http", "https", "ws", "wss")]
    assert len(network) > 50, page.requests
    away = [u for u in network if not u.startswith(server.url + "/")]
    assert not away, f"requests left the origin: {away}"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
