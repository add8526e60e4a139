"""`tiny-llama-pretrained`: a tiny causal LM that knows something, built on the spot.

No package on PyPI ships a small pretrained causal LM with its weights (the candidates seen,
such as `tinymodel` / `tinystoriesmodel`, download their weights from a model hub at run time,
which these hosts cannot reach), so Lathe pretrains one: the builtin tiny Llama shape, a
byte-level BPE tokenizer, and a few hundred steps of next-token prediction on a small corpus of
facts shipped here (capitals, colours, opposites, animal sounds, counting, days and months).
Forgetting checks and benchmarks then measure something: the base predicts these facts well,
and a fine-tune that overwrites them shows it.

Deterministic: a fixed seed, one CPU thread, a fixed corpus order — every host that builds it
gets the same weights. Built once per model cache (ensure_pretrained), in seconds on a CPU.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

CAPITALS = {
    "France": "Paris",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Germany": "Berlin",
    "Japan": "Tokyo",
    "Egypt": "Cairo",
    "Peru": "Lima",
    "Kenya": "Nairobi",
    "Russia": "Moscow",
    "Greece": "Athens",
    "Norway": "Oslo",
    "Cuba": "Havana",
}
COLOURS = {
    "the sky": "blue",
    "grass": "green",
    "snow": "white",
    "coal": "black",
    "a banana": "yellow",
    "a tomato": "red",
    "an orange": "orange",
    "a plum": "purple",
}
OPPOSITES = {"hot": "cold", "big": "small", "up": "down", "fast": "slow", "old": "new"}
SOUNDS = {"dog": "woof", "cat": "meow", "cow": "moo", "duck": "quack", "sheep": "baa"}
SEQUENCES = [
    "one two three four five six seven eight nine ten",
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
    "January February March April May June July August September October November December",
]

PRETRAINED = "tiny-llama-pretrained"
SHAPE = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 512,
}
STEPS = 240
BATCH = 16
WINDOW = 48
LEARNING_RATE = 3e-3


def knowledge() -> list[str]:
    """The facts the base learns, one sentence each: also the built-in general set of the
    forgetting check (core.evaluation.forgetting), so that check measures what it knew."""
    facts = [f"The capital of {c} is {city}." for c, city in CAPITALS.items()]
    facts += [f"The colour of {thing} is {colour}." for thing, colour in COLOURS.items()]
    facts += [f"The opposite of {a} is {b}." for a, b in OPPOSITES.items()]
    facts += [f"A {animal} says {sound}." for animal, sound in SOUNDS.items()]
    return facts + SEQUENCES


def corpus(seed: int = 0) -> list[str]:
    """Each fact several times, shuffled by `seed`: the pretraining stream."""
    rows = knowledge() * 6
    random.Random(seed).shuffle(rows)
    return rows


def _windows(tokenizer, seed: int):
    """The corpus as one token stream (facts separated by the end token), cut into windows."""
    ids: list[int] = []
    for sentence in corpus(seed):
        ids += tokenizer(sentence, add_special_tokens=False)["input_ids"]
        ids.append(tokenizer.eos_token_id)
    return [ids[i : i + WINDOW] for i in range(0, len(ids) - WINDOW, WINDOW // 2)]


def pretrain(path: Path, seed: int = 0) -> Path:
    """Write the pretrained model + tokenizer to `path` (a normal HF model directory)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from core.tiny_model import CHAT_TEMPLATE, build_tokenizer

    tokenizer = build_tokenizer(vocab_size=768, texts=knowledge())
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
        **SHAPE,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same reduction order on every host: the same weights
    try:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
        windows = torch.tensor(_windows(tokenizer, seed))
        order = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.0)
        model.train()
        loss = torch.tensor(0.0)
        for _ in range(STEPS):
            batch = windows[torch.randint(len(windows), (BATCH,), generator=order)]
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    finally:
        torch.set_num_threads(threads)
    path.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(path)
    tokenizer.save_pretrained(path)
    record = {
        "builder": PRETRAINED,
        "seed": seed,
        "steps": STEPS,
        "final_loss": float(loss.detach()),
    }
    (path / "lathe_builtin.json").write_text(json.dumps(record))
    return path


def ensure_pretrained(path: Path) -> Path:
    """Pretrain once per cache; concurrent builders race to an atomic rename (see
    core.tiny_model.ensure_tiny_llama)."""
    from core.tiny_model import ensure_built

    return ensure_built(path, pretrain)
