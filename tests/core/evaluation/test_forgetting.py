"""A base that knows something, and the forgetting check on it: `tiny-llama-pretrained`
prefers true facts to false ones where the random-init tiny-llama does not; fine-tuning it
hard on a narrow task (full fine-tuning) makes the check fire, a rank-1 LoRA on the same data
forgets less."""

from __future__ import annotations

import pytest

from core.data.examples import Conversation, Message
from core.evaluation import forgetting
from core.methods import supervised
from core.tiny_pretrain import CAPITALS
from tests.core.training.conftest import (
    _one_thread,  # noqa: F401 - autouse: one CPU thread
    make_ctx,
)

NARROW = [
    Conversation(
        (
            Message("user", f"Name a fruit, please ({i})."),
            Message("assistant", "banana banana banana"),
        )
    )
    for i in range(8)
]
HP = {"n_epochs": 12, "batch_size": 8, "learning_rate": 3e-3, "packing": False}
SMALL_LORA = {
    "type": "lora",
    "r": 1,
    "alpha": 2,
    "dropout": 0.0,
    "target_modules": ["q_proj", "v_proj"],
}


def _prefers_truth(path) -> float:
    """Share of capitals whose true city the model scores above a wrong one."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = (
        AutoModelForCausalLM.from_pretrained(path).eval(),
        AutoTokenizer.from_pretrained(path),
    )
    cities = list(CAPITALS.values())

    def logprob(prompt: str, answer: str) -> float:
        n = len(tok(prompt, add_special_tokens=False)["input_ids"])
        ids = tok(prompt + answer, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            lp = model(input_ids=torch.tensor([ids])).logits.log_softmax(-1)[0]
        return sum(float(lp[i - 1, ids[i]]) for i in range(n, len(ids)))

    wins = 0
    for i, (country, city) in enumerate(CAPITALS.items()):
        wrong = cities[(i + 1) % len(cities)]
        prompt = f"The capital of {country} is"
        wins += logprob(prompt, f" {city}") > logprob(prompt, f" {wrong}")
    return wins / len(CAPITALS)


def test_the_pretrained_base_knows_its_facts_the_random_one_does_not(pretrained_model, tiny_model):
    assert _prefers_truth(pretrained_model) == 1.0
    assert _prefers_truth(tiny_model) < 0.9


@pytest.fixture(scope="module")
def tuned(pretrained_model, tmp_path_factory):
    """{adapter name: forgetting report} after the same narrow fine-tune."""
    reports = {}
    for name, adapter in (("full", {"type": "full"}), ("lora_r1", SMALL_LORA)):
        root = tmp_path_factory.mktemp(name)
        ctx, _ = make_ctx(root, pretrained_model, HP, train=NARROW, valid=[], adapter=adapter)
        result = supervised.run(ctx)
        reports[name] = forgetting.check(
            pretrained_model,
            None,
            result.artifact_dir,
            forgetting.builtin_general_set(),
            threshold=0.5,
            source="builtin",
        )
    return reports


def test_hard_full_fine_tuning_on_a_narrow_task_fires_the_check(tuned):
    full = tuned["full"]
    assert full["base"]["loss"] < 1.5  # the base knows the general set
    assert full["exceeded"] and full["delta"]["loss"] > 0.5, full["delta"]
    assert full["delta"]["token_accuracy"] < 0
    assert "forgotten" in forgetting.message(full)


def test_a_small_lora_forgets_less_than_full_fine_tuning(tuned):
    full, lora = tuned["full"], tuned["lora_r1"]
    print(  # the comparison the issue asks to report (direction asserted only)
        f"general loss delta: full {full['delta']['loss']:+.4f}, "
        f"lora r=1 {lora['delta']['loss']:+.4f}; token accuracy delta: full "
        f"{full['delta']['token_accuracy']:+.3f}, lora r=1 {lora['delta']['token_accuracy']:+.3f}"
    )
    assert lora["delta"]["loss"] < full["delta"]["loss"]
    assert lora["base"] == full["base"]  # the same starting model, scored the same way


def test_auto_skips_random_init_bases_unless_a_general_file_is_named():
    assert not forgetting.wanted("auto", "tiny-llama", None)
    assert forgetting.wanted("auto", "tiny-llama", "file-x")
    assert forgetting.wanted("auto", "tiny-llama-pretrained", None)
    assert not forgetting.wanted(False, "tiny-llama-pretrained", None)
