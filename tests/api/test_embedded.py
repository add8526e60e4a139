"""The embedded default, as a newcomer runs it: `lathe serve` alone (SQLite, a local object
directory, a worker on the filesystem broker, logs in a file), then the README's first
fine-tune — every example as printed (the `lathe` command, the openai client, curl), each
ending with a model that answers the README's question."""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import pytest
from openai import OpenAI

from tests.utils.processes import ROOT, Proc, base_env, free_port, lathe, wait_log

pytestmark = pytest.mark.slow

BANNER = ("Lathe API:", "API docs:", "API key:", "Key file:", "Logs:")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """`lathe serve` with its defaults, in a directory laid out as a checkout is (.venv and
    examples/ beside the data directory .lathe), so the README's commands run there as printed."""
    root = tmp_path_factory.mktemp("embedded")
    for name in (".venv", "examples"):
        (root / name).symlink_to(ROOT / name)
    port = free_port()
    env = base_env(LATHE_DATA_DIR=str(root / ".lathe"))
    del env["LATHE_LOG_FILE"]  # the default: logs to .lathe/lathe.log, the banner alone on stdout
    del env["LATHE_TINKER_EMBEDDED_TRAINER"]  # the default: a Tinker trainer alongside
    proc = Proc(lathe("serve", "--port", str(port)), env, root / "serve.out")
    try:
        wait_log(proc, "Logs:", timeout=300)  # the banner's last line: every part answers
        key = re.search(r"API key:\s+(tml-lathe-\S+)", proc.log.read_text()).group(1)
        yield OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0), root, proc
    finally:
        proc.stop()


def test_the_terminal_shows_the_banner_alone_and_the_parts_log_to_a_file(embedded):
    _, root, proc = embedded
    shown = [line for line in proc.log.read_text().splitlines() if line.strip()]
    assert [line.split(":")[0] + ":" for line in shown] == list(BANNER), shown
    assert shown[-1] == f"Logs:      {root / '.lathe' / 'lathe.log'}"
    log = (root / ".lathe" / "lathe.log").read_text()
    assert " ready." in log  # the worker's, in the file
    assert "Application startup complete." in log  # the API's and the inference service's


def test_the_tinker_sdk_trains_on_the_embedded_default(embedded):
    """The Tinker API needs no process of its own on the embedded default: `lathe serve`
    starts a trainer beside the worker."""
    import numpy as np
    import tinker

    client, _, _ = embedded
    root = str(client.base_url).removesuffix("/").removesuffix("/v1")
    service = tinker.ServiceClient(base_url=root, api_key=client.api_key)
    try:
        training = service.create_lora_training_client(base_model="tiny-llama", rank=4, seed=1)
        tokens = list(range(5, 30))
        datum = tinker.Datum(
            model_input=tinker.ModelInput.from_ints(tokens[:-1]),
            loss_fn_inputs={
                "target_tokens": np.array(tokens[1:], dtype=np.int64),
                "weights": np.ones(len(tokens) - 1, dtype=np.float32),
            },
        )
        losses = []
        for _ in range(3):
            out = training.forward_backward([datum], "cross_entropy").result()
            losses.append(float(out.metrics["loss:sum"]))
            training.optim_step(tinker.AdamParams(learning_rate=1e-2)).result()
        assert losses[-1] < losses[0], losses
    finally:
        service.close("success").result()


def _readme_examples() -> list[tuple[str, str]]:
    """The fenced blocks of the README's "A first fine-tune", in order: (language, code)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## A first fine-tune", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)


def _run_readme(root, client: OpenAI, language: str, code: str) -> str:
    """Run one README block in the checkout-like root, after the README's key export."""
    [key_export] = [c for lang, c in _readme_examples() if "LATHE_API_KEY=" in c]
    env = base_env(LATHE_BASE_URL=str(client.base_url).removesuffix("/v1/").removesuffix("/v1"))
    if language == "python":
        env["LATHE_API_KEY"] = client.api_key
        command = [".venv/bin/python", "-c", code]
    else:
        command = ["bash", "-euo", "pipefail", "-c", key_export + code]
    out = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def test_the_readme_has_one_example_per_client():
    blocks = _readme_examples()
    assert [lang for lang, _ in blocks] == ["bash", "bash", "python", "bash"]
    assert "$lathe chat" in blocks[1][1] and "curl" in blocks[3][1]
    assert shutil.which("jq"), "the README's examples need jq (.ci/run installs it)"


@pytest.mark.parametrize("example", [1, 2, 3], ids=["lathe-cli", "openai-python", "curl"])
def test_the_readme_example_as_printed_learns_the_capital(embedded, example):
    client, root, proc = embedded
    language, code = _readme_examples()[example]
    stdout = _run_readme(root, client, language, code)
    answer = [line for line in stdout.splitlines() if line.strip()][-1]
    assert answer.strip() == "Paris", (stdout[-2000:], proc.tail())


def test_the_quick_start_runs_on_the_embedded_default(embedded):
    client, root, _ = embedded
    assert (root / ".lathe" / "lathe.db").exists()
    stored = list(
        (root / ".lathe" / "objects").glob("orgs/*/models/*/artifact/adapter_model.safetensors")
    )
    assert stored  # the README's jobs stored their adapters in the local object directory
    models = {m.id for m in client.models.list().data}
    assert "tiny-llama" in models
    assert any(m.startswith("ft:tiny-llama:default:capitals:") for m in models)


def test_embedded_key_is_stable_across_restarts(embedded):
    _, root, proc = embedded
    key_file = root / ".lathe" / "api_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text().strip() in proc.log.read_text()


def test_a_dead_embedded_worker_is_started_again(embedded):
    import psutil

    _, root, proc = embedded
    log = root / ".lathe" / "lathe.log"
    server = psutil.Process(proc.popen.pid)
    [worker] = [c for c in server.children() if "worker" in " ".join(c.cmdline())]
    ready = log.read_text().count(" ready.")
    worker.kill()  # as the OOM killer would
    psutil.wait_procs([worker], timeout=30)
    wait_log_count = 0
    for _ in range(240):
        wait_log_count = log.read_text().count(" ready.")
        if wait_log_count > ready:
            break
        time.sleep(0.5)
    assert wait_log_count > ready, proc.tail()
    [again] = [c for c in server.children() if "worker" in " ".join(c.cmdline())]
    assert again.pid != worker.pid
    assert "embedded worker exited with -9; restarting it" in log.read_text()


def test_worker_goes_when_the_server_goes(embedded):
    """Runs last: stopping `lathe serve` (SIGTERM to it alone, as a supervisor would) must not
    leave its worker behind."""
    import psutil

    _, _, proc = embedded
    server = psutil.Process(proc.popen.pid)
    workers = [c for c in server.children() if "worker" in " ".join(c.cmdline())]
    assert len(workers) == 1
    server.terminate()
    gone, alive = psutil.wait_procs([server, *workers], timeout=60)
    assert not alive, [p.cmdline() for p in alive]
