"""Promptfoo (npm `promptfoo`, pinned in tests/promptfoo) against the production stack with
its OpenAI provider pointed at Lathe: `promptfoo eval` compares a base and its fine-tune on
tests/promptfoo/compare.yaml — a deterministic assertion and an llm-rubric judged by a model
Lathe serves."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.promptfoo.tools import HERE, promptfoo_bin

pytestmark = pytest.mark.slow


def promptfoo_eval(stack, fine_tune: str, out: Path) -> dict:
    env = {
        **os.environ,
        "OPENAI_BASE_URL": stack.url,
        "OPENAI_API_KEY": stack.key,
        "LATHE_FINE_TUNE": fine_tune,
        "PROMPTFOO_CONFIG_DIR": str(out.parent / "promptfoo-home"),
        "PROMPTFOO_DISABLE_TELEMETRY": "1",
        "PROMPTFOO_DISABLE_UPDATE": "1",
        "PROMPTFOO_DISABLE_SHARING": "1",
        "REQUEST_TIMEOUT_MS": "120000",
    }
    args = [str(promptfoo_bin()), "eval", "-c", str(HERE / "compare.yaml"), "--no-cache"]
    args += ["--no-progress-bar", "-o", str(out)]
    log = out.with_suffix(".log")
    with log.open("w") as sink:  # a file, not a pipe: nothing promptfoo leaves behind holds it
        done = subprocess.run(
            args, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, timeout=300
        )
    assert out.exists(), (done.returncode, log.read_text()[-4000:])
    return json.loads(out.read_text())["results"]


def test_promptfoo_compares_a_base_and_its_fine_tune(stack, capitals_model, tmp_path):
    judged_before = stack.inference_stats()["in_process"]["requests"]
    results = promptfoo_eval(stack, capitals_model, tmp_path / "out.json")["results"]
    by_label: dict[str, list[dict]] = {}
    for row in results:
        by_label.setdefault(row["provider"]["label"], []).append(row)
    assert set(by_label) == {"base", "fine-tune"} and len(results) == 4
    for label, rows in by_label.items():
        for row in rows:
            assert not row["response"].get("error"), row["response"]  # Lathe answered
            parts = {p["assertion"]["type"]: p for p in row["gradingResult"]["componentResults"]}
            city = row["vars"]["city"]
            output = row["response"]["output"]
            assert parts["icontains"]["pass"] == (city.lower() in output.lower())
            if label == "fine-tune":
                assert parts["icontains"]["pass"], output  # it learned the capitals
            rubric = parts["llm-rubric"]  # judged: a score from the judge's JSON, no parse error
            assert 0 <= rubric["score"] <= 1 and "JSON" not in rubric["reason"], rubric
    assert not all(
        p["pass"]
        for row in by_label["base"]
        for p in row["gradingResult"]["componentResults"]
        if p["assertion"]["type"] == "icontains"
    )  # the random-weights base does not know them
    # 4 answers and 4 judgements, all through Lathe's inference service
    assert stack.inference_stats()["in_process"]["requests"] - judged_before >= 8
