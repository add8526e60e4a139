"""lm-evaluation-harness itself against a running Lathe, as its users run it: the
`local-completions` and `local-chat-completions` models with `tokenizer_backend=remote` and
`base_url={root}/models/{model}/v1/…` (no tokenizer files on the client), on local task files
(core.evaluation.benchmarks builds their configs). Their scores equal lm-eval's own `hf`
model on the same weights."""

from __future__ import annotations

import json

import pytest

from core.evaluation import benchmarks
from core.tiny_pretrain import CAPITALS, PRETRAINED

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tasks(tmp_path_factory):
    """A multiple-choice (loglikelihood) task and a generate_until one over the capitals the
    pretrained tiny model knows; `work` holds their lm-eval configs."""
    tmp = tmp_path_factory.mktemp("lm_eval")
    facts = list(CAPITALS.items())
    mc, em = tmp / "mc.jsonl", tmp / "em.jsonl"
    rows = []
    for i, (country, city) in enumerate(facts):
        wrong = [facts[(i + k) % len(facts)][1] for k in (1, 2)]
        choices = [f" {c}" for c in wrong]
        choices.insert(i % 3, f" {city}")
        rows.append({"query": f"The capital of {country} is", "choices": choices, "gold": i % 3})
    mc.write_text("".join(json.dumps(r) + "\n" for r in rows))
    em.write_text(
        "".join(
            json.dumps({"prompt": f"The capital of {c} is", "answer": f" {x}."}) + "\n"
            for c, x in facts
        )
    )
    return benchmarks.write_tasks([("capitals_mc", mc), ("capitals_em", em)], tmp / "work")


def run(model: str, model_args: dict, names: list[str], include, **kw) -> dict[str, dict]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(include), include_defaults=False)
    out = lm_eval.simple_evaluate(
        model=model, model_args=model_args, tasks=names, task_manager=manager,
        log_samples=False, random_seed=0, **kw,
    )  # fmt: skip
    return {name: benchmarks._metrics(out["results"][name]) for name in names}


def test_lm_eval_through_lathe_scores_as_its_hf_model(stack, pretrained_model, tasks, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OPENAI_API_KEY", stack.key)  # lm-eval's local-* models send it
    names = ["capitals_mc", "capitals_em"]
    hf = run("hf", {"pretrained": str(pretrained_model), "device": "cpu"}, names, tasks)
    root = f"{stack.url}/models/{PRETRAINED}/v1"
    remote = {"model": PRETRAINED, "tokenizer_backend": "remote", "auth_token": stack.key,
              "num_concurrent": 2, "max_retries": 1, "timeout": 120}  # fmt: skip
    lathe = run("local-completions", {**remote, "base_url": f"{root}/completions"}, names, tasks)
    assert hf["capitals_mc"]["acc"] >= 0.8  # the tiny model knows them: not a chance score
    for name, metric in (("capitals_mc", "acc"), ("capitals_mc", "acc_norm"),
                         ("capitals_em", "exact_match")):  # fmt: skip
        assert lathe[name][metric] == pytest.approx(hf[name][metric], abs=0.05), (name, metric)
    chat_args = {**remote, "base_url": f"{root}/chat/completions", "tokenized_requests": False}
    hf_chat = run("hf", {"pretrained": str(pretrained_model), "device": "cpu"}, ["capitals_em"],
                  tasks, apply_chat_template=True)  # fmt: skip
    lathe_chat = run(
        "local-chat-completions", chat_args, ["capitals_em"], tasks, apply_chat_template=True
    )
    assert lathe_chat["capitals_em"]["exact_match"] == pytest.approx(
        hf_chat["capitals_em"]["exact_match"], abs=0.05
    )
