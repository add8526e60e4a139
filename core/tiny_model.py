"""A tiny causal LM built on the spot, so dev setups and tests never touch a model hub.

It is a real Llama (the class most open models share) with a real byte-level BPE tokenizer
and a chat template, randomly initialised from a fixed seed: every host that builds it gets
the same weights, so a worker on another machine trains exactly the model the API serves.
"""

from __future__ import annotations

import json
from pathlib import Path

CHAT_TEMPLATE = (
    "{% if tools %}<|system|>\nYou can call these functions. To call one, answer with "
    '<tool_call>{"name": ..., "arguments": {...}}</tool_call>.\n'
    "{% for tool in tools %}"
    "{{ (tool.function if tool.function is defined else tool) | tojson }}\n"
    "{% endfor %}<|end|>\n{% endif %}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n"
    "{% if message['content'] %}{{ message['content'] }}{% endif %}"
    "{% for call in message.get('tool_calls') or [] %}"
    "{% set f = call.function if call.function is defined else call %}"
    '<tool_call>{"name": {{ f.name | tojson }}, "arguments": '
    "{% if f.arguments is string %}{{ f.arguments }}{% else %}{{ f.arguments | tojson }}{% endif %}"
    "}</tool_call>"
    "{% endfor %}<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""Lathe's default chat template: `<|role|>\ncontent<|end|>\n` per turn. Rendering the prompt
with a generation prompt is a prefix of prompt + answer, which is what assistant-only loss
masking (and TRL) rely on.

Tools, Hermes-style: the offered functions (OpenAI's `{"type": "function", "function": ...}`
or the bare function schema: both render the same) are listed in a first system turn, and an
assistant turn writes each call after its content as
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (arguments as an object, or as
OpenAI's JSON string verbatim). Tool results are `<|tool|>` turns. The in-process engine and
vLLM's `hermes` parser read these blocks back as `message.tool_calls`; a conversation without
tools renders exactly as before."""

TOOLS_CHAT_TEMPLATE = CHAT_TEMPLATE
"""Kept for callers that asked for a tools-aware template: the default one is."""

SPECIAL_TOKENS = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>"]

_CORPUS = """
The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a
single step. What is the capital of France? The capital of France is Paris. Hello, how can I
help you today? Please answer the question. Yes. No. Maybe. Thank you! You are a helpful
assistant. Translate to French: good morning -> bonjour. 0 1 2 3 4 5 6 7 8 9 10 100 1000.
def add(a, b): return a + b. {"key": "value", "list": [1, 2, 3]} The answer is 42.
Apples, bananas, cherries and dates are fruit. Red, green, blue, yellow, purple, orange.
Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April.
""".strip()

TINY_CONFIG = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
}


TINY_64_CONFIG = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 512,
}
"""head_dim 64: vLLM's CPU attention refuses tiny-llama's 16 (it needs at least 32)."""

BUILTINS = {
    "tiny-llama": (TINY_CONFIG, CHAT_TEMPLATE),
    "tiny-llama-64": (TINY_64_CONFIG, TOOLS_CHAT_TEMPLATE),
}


def build_tokenizer(vocab_size: int = 512, texts: list[str] | None = None):
    """Train a byte-level BPE on a fixed corpus (plus `texts`, for a model pretrained on them);
    deterministic, so builds agree across hosts."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_CORPUS] * 4 + (texts or []), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        eos_token="<|end|>",
        bos_token=None,
        unk_token=None,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_llama(path: Path, seed: int = 0, builder: str = "tiny-llama") -> Path:
    """Write a tiny random-init Llama + tokenizer to `path` (a normal HF model directory)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    shape, template = BUILTINS[builder]
    tokenizer = build_tokenizer()
    tokenizer.chat_template = template
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
        **shape,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    # With the stock 0.02 init, a frozen head caps every logit near ±1: adapters that leave the
    # head frozen (LoRA, IA3, prompt tuning) could then never become confident. Real pretrained
    # heads are far from that small, so give ours a comparable scale.
    with torch.no_grad():
        model.lm_head.weight.normal_(0.0, 0.3)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "lathe_builtin.json").write_text(json.dumps({"builder": builder, "seed": seed}))
    return path


def ensure_tiny_llama(path: Path, builder: str = "tiny-llama") -> Path:
    """Build the model once. `builder`: a key of BUILTINS (tiny-llama, or tiny-llama-64 for
    vLLM)."""
    return ensure_built(path, lambda tmp: build_tiny_llama(tmp, builder=builder))


def ensure_built(path: Path, build) -> Path:
    """Run `build(tmp_dir)` once per `path`: concurrent builders write to a temp dir and rename
    atomically; the first to finish wins."""
    if (path / "lathe_builtin.json").exists():
        return path
    import os
    import shutil
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-", dir=path.parent))
    try:
        build(tmp)
        try:
            os.rename(tmp, path)
        except OSError:  # another process won the race
            if not (path / "lathe_builtin.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
