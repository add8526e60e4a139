"""The tinker-cookbook's own recipes (`recipes/sl_loop.py`, `recipes/rl_loop.py`, 0.5.8, in
.venv-cookbook: scripts/install_cookbook.sh) run unchanged against Lathe, as
docs/guides/tinker.md tells a user to run them with no model hub:

* the base is registered under a name the cookbook's model table knows
  (`meta-llama/Llama-3.2-1B`, renderer `role_colon`; here the builtin tiny Llama under it);
* `HF_ENDPOINT=<lathe>/hf`: the cookbook's `get_tokenizer` fetches the tokenizer from Lathe;
* the datasets the recipes name (`HuggingFaceH4/no_robots`, `openai/gsm8k`) are local folders
  of that name in the working directory, which `datasets.load_dataset` prefers to the hub;
* the key is the one `lathe keys create` printed, unchanged, in `TINKER_API_KEY`.

rl_loop starts from sl_loop's final state (its resume file, checkpoints.jsonl): SFT teaches
the tiny model to answer `\\boxed{4}` or `\\boxed{5}` half the time each, so the rewards of a
group differ and the importance_sampling step really trains."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tinker.conftest import COOKBOOK_BASE as BASE
from tests.tinker.conftest import AliasLathe
from tests.utils.processes import ROOT, run_lathe
from tests.utils.stack import Stack

COOKBOOK_PYTHON = ROOT / ".venv-cookbook" / "bin" / "python"
SUFFIX = " Provide a numerical answer without units, written inside \\boxed{}."
PREFIX = [  # rl_loop's few-shot prefix, so SFT sees the prompts RL samples from
    {"role": "user", "content": "How many r's are in strawberry?" + SUFFIX},
    {
        "role": "assistant",
        "content": "Let's spell the word out and number all the letters: 1) s 2) t 3) r 4) a "
        "5) w 6) b 7) e 8) r 9) r 10) y. We have r's at positions 3, 8, and 9. \\boxed{3}",
    },
]
QUESTION = "What is 2 + 2?"
SL_BATCH, SL_STEPS, RL_BATCH, RL_STEPS = 8, 10, 2, 1
GROUP = 16
"""Samples per RL prompt. rl_loop samples unseeded at temperature 1 from a tiny model that SFT
taught the answer's format only in part: with 8 per prompt, 16 in all, every answer came out
wrong (reward 0) in one run seen; with 32 in all that (and all right) is far rarer."""


@pytest.fixture(scope="module")
def cookbook_lathe(request: pytest.FixtureRequest) -> Iterator[str]:
    """Lathe's API with the cookbook's base, and a trainer for it. Where .venv-cookbook is
    missing the test says so: it fails in CI (scripts/test.sh installs it there), and skips
    in a local loop (`scripts/test.sh --quick` leaves it out)."""
    if not any((ROOT / ".venv-cookbook").glob(".lathe-installed-*")):
        why = "tinker-cookbook is not installed: run scripts/install_cookbook.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    alias_lathe: AliasLathe = request.getfixturevalue("alias_lathe")
    trainer = alias_lathe.start_trainer("cookbook-trainer")
    try:
        yield alias_lathe.url
    finally:
        trainer.stop()


def _write_datasets(cwd: Path) -> None:
    """`HuggingFaceH4/no_robots` (train split, `messages`) and `openai/gsm8k` (config `main`,
    `question`/`answer`) as local folders, in the shapes the recipes read."""
    sl = cwd / "HuggingFaceH4" / "no_robots"
    sl.mkdir(parents=True)
    rows = [
        {
            "messages": [
                *PREFIX,
                {"role": "user", "content": QUESTION + SUFFIX},
                {"role": "assistant", "content": f"\\boxed{{{4 + i % 2}}}"},
            ]
        }
        for i in range(SL_BATCH * SL_STEPS)
    ]
    (sl / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rl = cwd / "openai" / "gsm8k"
    (rl / "main").mkdir(parents=True)
    (rl / "README.md").write_text(
        "---\nconfigs:\n- config_name: main\n  data_files:\n"
        "  - split: train\n    path: main/train.jsonl\n---\n"
    )
    row = json.dumps({"question": QUESTION, "answer": "2 + 2 = 4\n#### 4"}) + "\n"
    (rl / "main" / "train.jsonl").write_text(row * RL_BATCH * (SL_STEPS + RL_STEPS))


def _recipe(name: str, cwd: Path, url: str, key: str, **config: object) -> list[dict]:
    """Runs `tinker_cookbook.recipes.<name>` with `config` (chz `key=value` arguments) and
    returns its metrics.jsonl rows."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LATHE_", "HF_"))}
    env |= dict(
        TINKER_API_KEY=key,
        HF_ENDPOINT=f"{url}/hf",
        HF_HOME=str(cwd / "hf-home"),
        TINKER_TELEMETRY="0",
        WANDB_MODE="disabled",
    )
    args = [f"{k}={v}" for k, v in {"base_url": url, "model_name": BASE, **config}.items()]
    out = subprocess.run(
        [str(COOKBOOK_PYTHON), "-m", f"tinker_cookbook.recipes.{name}", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, f"{name} failed:\n{out.stdout[-4000:]}\n{out.stderr[-6000:]}"
    log = Path(str(config["log_path"])) / "metrics.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_sl_loop_then_rl_loop_run_unchanged(cookbook_lathe: str, stack: Stack, tmp_path: Path):
    key = run_lathe(stack.env, "keys", "create", "--org", "cookbook").strip()
    _write_datasets(tmp_path)
    sl_log, rl_log = tmp_path / "sl", tmp_path / "rl"
    common = dict(lora_rank=8, save_every=0)
    sl = _recipe(
        "sl_loop",
        tmp_path,
        cookbook_lathe,
        key,
        log_path=sl_log,
        batch_size=SL_BATCH,
        learning_rate=1e-2,
        max_length=512,
        train_on_what="last_assistant_message",
        **common,
    )
    assert len(sl) == SL_STEPS
    assert sl[-1]["train_mean_nll"] < sl[0]["train_mean_nll"] / 2, sl
    final = [json.loads(line) for line in (sl_log / "checkpoints.jsonl").read_text().splitlines()]
    assert final[-1]["state_path"].startswith("tinker://")
    assert final[-1]["sampler_path"].endswith("/sampler_weights/final")

    rl_log.mkdir()  # rl_loop resumes from the SFT state recorded here
    shutil.copy(sl_log / "checkpoints.jsonl", rl_log / "checkpoints.jsonl")
    rl = _recipe(
        "rl_loop",
        tmp_path,
        cookbook_lathe,
        key,
        log_path=rl_log,
        batch_size=RL_BATCH,
        group_size=GROUP,
        max_tokens=16,
        learning_rate=1e-3,
        max_steps=SL_STEPS + RL_STEPS,
        **common,
    )
    assert len(rl) == RL_STEPS
    assert 0 < rl[0]["reward/total"] < 1, rl  # right and wrong answers in a group
    assert "grad_norm:mean" in rl[0], rl  # so its importance_sampling step trained
