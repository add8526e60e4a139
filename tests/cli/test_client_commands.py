"""The `lathe` client commands, run as a user runs them (separate processes, configured by
LATHE_BASE_URL / LATHE_API_KEY or a profile) against a real embedded `lathe serve`."""

from __future__ import annotations

import json
import time
import zipfile

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.conftest import Server, cli
from tests.utils.flows import capitals_jsonl

pytestmark = pytest.mark.slow


def _json(out) -> dict:
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def uploaded(server: Server) -> str:
    path = capitals_jsonl(server.root / "train.jsonl")
    out = cli(server.env(), "files", "upload", str(path))
    assert out.returncode == 0, out.stderr
    size = path.stat().st_size
    assert f"{size}/{size} bytes" in out.stderr  # the bar reached the whole file, on stderr
    assert f"{size}/{size} bytes" not in out.stdout  # stdout is the command's output alone
    assert "processed" in out.stdout and "chat" in out.stdout
    return _json(cli(server.env(), "files", "list", "--json"))["data"][0]["id"]


@pytest.fixture(scope="module")
def trained(server: Server, uploaded: str) -> dict:
    """`jobs create --watch` in a log (no terminal): one line per step, then the outcome."""
    out = cli(
        server.env(), "jobs", "create", "--model", "tiny-llama", "-t", uploaded,
        "--suffix", "cli", "--seed", "7", "--n-epochs", "6", "--batch-size", "4",
        "--learning-rate", "3e-3", "--metadata", "team=docs", "--watch",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr + server.proc.tail()
    assert "Step 6/6: training loss=" in out.stdout
    assert "The job has successfully completed" in out.stdout
    assert "succeeded: ft:tiny-llama:default:cli:" in out.stdout
    job = _json(cli(server.env(), "jobs", "list", "--json"))["data"][0]
    assert job["metadata"] == {"team": "docs"} and job["status"] == "succeeded"
    return job


def test_validate_prints_the_dry_run_report(server: Server, uploaded: str):
    out = cli(server.env(), "files", "validate", uploaded, "--model", "tiny-llama")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 of 4 records" in out.stdout and "tokens per sequence" in out.stdout
    report = _json(cli(server.env(), "files", "validate", uploaded, "--model", "tiny-llama",
                       "--max-seq-length", "8", "--json"))  # fmt: skip
    assert report["tokens"]["max_seq_length"] == 8 and report["tokens"]["n_truncated"] == 4


def test_server_errors_are_one_line_naming_the_field(server: Server, uploaded: str):
    out = cli(server.env(), "files", "validate", uploaded, "--model", "no-such-model")
    assert out.returncode == 1
    assert "error:" in out.stderr and "(param: model)" in out.stderr
    assert "Traceback" not in out.stderr
    out = cli(server.env(LATHE_API_KEY="sk-lathe-wrong"), "jobs", "list")
    assert out.returncode == 1 and "error:" in out.stderr and "Traceback" not in out.stderr


def test_watch_replays_a_finished_job_and_exits_with_its_outcome(server: Server, trained):
    out = cli(server.env(), "jobs", "watch", trained["id"])
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("training loss=") == 6  # each step once, oldest first
    assert out.stdout.index("Step 1/6") < out.stdout.index("Step 6/6")
    assert "step 6/6" in out.stdout  # the bar's final state
    assert _json(cli(server.env(), "jobs", "get", trained["id"], "--json"))["status"] == (
        "succeeded"
    )


def test_watch_uses_the_event_stream_when_the_server_has_one(server: Server, trained):
    """The transport the bar names is the one the server offers for `?stream=true`."""
    probe = httpx.get(
        f"{server.base_url}/v1/fine_tuning/jobs/{trained['id']}/events",
        params={"stream": "true"},
        headers={"Authorization": f"Bearer {server.key}"},
        timeout=30,
    )
    streams = probe.headers.get("content-type", "").startswith("text/event-stream")
    out = cli(server.env(), "jobs", "watch", trained["id"])
    assert out.returncode == 0, out.stdout + out.stderr
    assert ("(live)" if streams else "(polling)") in out.stdout


def test_watch_draws_a_live_bar_in_a_terminal(server: Server, trained):
    out = cli(server.env(TTY_COMPATIBLE="1"), "jobs", "watch", trained["id"])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "━" in out.stdout and "step 6/6" in out.stdout
    assert "loss " in out.stdout and "ETA " in out.stdout
    assert "Step 3/6: training loss" not in out.stdout  # steps are the bar, not lines


def test_download_saves_the_adapter_zip(server: Server, trained):
    dest = server.root / "downloads"
    dest.mkdir()
    out = cli(server.env(), "models", "download", trained["fine_tuned_model"], "-o", str(dest))
    assert out.returncode == 0, out.stdout + out.stderr
    (saved,) = dest.glob("*.zip")
    with zipfile.ZipFile(saved) as z:
        assert {"adapter_config.json", "adapter_model.safetensors"} <= set(z.namelist())
        # with the builtin base in base/, so it loads as downloaded (core.bundles)
        assert json.loads(z.read("adapter_config.json"))["base_model_name_or_path"] == "base"
        assert "base/config.json" in z.namelist()
    assert not list(dest.glob("*.part"))
    # The builtin base is Lathe's own: downloadable too, under the name the adapter gives.
    out = cli(server.env(), "models", "download", "tiny-llama", "-o", str(dest / "base.zip"))
    assert out.returncode == 0, out.stdout + out.stderr
    with zipfile.ZipFile(dest / "base.zip") as z:
        assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(z.namelist())


def _chat_requests(server: Server) -> float:
    """Chat requests the server answered, from its own /metrics."""
    text = httpx.get(f"{server.base_url}/metrics").text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "lathe_http_requests_total"
        and s.labels["route"] == "/v1/chat/completions"
        and s.labels["status"] == "200"
    )


def test_models_list_and_chat(server: Server, trained):
    out = cli(server.env(), "models", "list")
    assert out.returncode == 0 and "tiny-llama" in out.stdout
    model, question = trained["fine_tuned_model"], "What is the capital of France?"
    out = cli(server.env(), "chat", model, "-m", question, "--temperature", "0",
              "--max-tokens", "4")  # fmt: skip
    assert out.returncode == 0, out.stderr
    direct = httpx.post(
        f"{server.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {server.key}"},
        json={"model": model, "messages": [{"role": "user", "content": question}],
              "temperature": 0, "max_tokens": 4},
        timeout=120,
    ).json()  # fmt: skip
    assert out.stdout == direct["choices"][0]["message"]["content"] + "\n"  # streamed, whole
    # A conversation read from stdin: two turns, two requests.
    before = _chat_requests(server)
    out = cli(server.env(), "chat", model, "--max-tokens", "2", input="Hello\nAgain\nexit\n")
    assert out.returncode == 0, out.stderr
    assert _chat_requests(server) - before == 2


def _status(server: Server, job_id: str) -> str:
    return _json(cli(server.env(), "jobs", "get", job_id, "--json"))["status"]


def test_pause_resume_cancel(server: Server, uploaded: str, trained):
    job = _json(cli(server.env(), "jobs", "create", "--model", "tiny-llama", "-t", uploaded,
                    "--n-epochs", "200", "--json"))  # fmt: skip
    deadline = time.monotonic() + 120
    while _status(server, job["id"]) == "validating_files" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _json(cli(server.env(), "jobs", "pause", job["id"], "--json"))["status"] == "paused"
    out = cli(server.env(), "jobs", "watch", job["id"])  # shown as it stands, not waited on
    assert out.returncode == 1 and f"lathe jobs resume {job['id']}" in out.stdout
    assert _json(cli(server.env(), "jobs", "resume", job["id"], "--json"))["status"] == "queued"
    assert _json(cli(server.env(), "jobs", "cancel", job["id"], "--json"))["status"] == (
        "cancelled"
    )
    out = cli(server.env(), "jobs", "watch", job["id"])
    assert out.returncode == 1 and "cancelled" in out.stdout
    out = cli(server.env(), "jobs", "resume", job["id"])
    assert out.returncode == 1 and "nothing to resume" in out.stderr


def test_login_keeps_a_private_profile(server: Server, tmp_path):
    env = server.env(XDG_CONFIG_HOME=str(tmp_path))
    del env["LATHE_BASE_URL"], env["LATHE_API_KEY"]
    out = cli(env, "login", "--base-url", server.base_url, "--api-key", "sk-lathe-wrong")
    assert out.returncode == 1 and not (tmp_path / "lathe" / "config.toml").exists()
    out = cli(env, "login", "--base-url", f"{server.base_url}/v1", input=server.key + "\n")
    assert out.returncode == 0, out.stderr
    profile = tmp_path / "lathe" / "config.toml"
    assert profile.stat().st_mode & 0o777 == 0o600
    assert _json(cli(env, "models", "list", "--json"))["data"]  # no env: the profile answers
    out = cli(env, "models", "list", "--profile", "staging")
    assert out.returncode == 1 and "no profile 'staging'" in out.stderr


def test_scripts_pipes_and_narrow_terminals(server: Server, trained, tmp_path):
    import subprocess

    from tests.utils.processes import ROOT, lathe

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [}\n')
    out = cli(server.env(), "files", "upload", str(bad))  # stored, status error: exit 1
    assert out.returncode == 1 and "failed validation" in out.stderr, out.stdout + out.stderr
    before = _json(cli(server.env(), "jobs", "list", "--json"))
    assert _json(cli(server.env(), "--json", "jobs", "list")) == before  # the flag first too
    piped = subprocess.Popen(lathe("--json", "files", "list"), env=server.env(), cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    piped.stdout.close()  # `| head` that has read enough
    _, err = piped.communicate(timeout=120)
    assert b"Traceback" not in err and piped.returncode == 141, err
    narrow = cli(server.env(COLUMNS="80"), "jobs", "list")
    assert narrow.returncode == 0 and max(len(line) for line in narrow.stdout.splitlines()) <= 80
    lines = narrow.stdout.splitlines()
    assert any(trained["id"] in line for line in lines)  # whole, on one line: copyable
    assert any(trained["fine_tuned_model"] in line for line in lines), narrow.stdout
