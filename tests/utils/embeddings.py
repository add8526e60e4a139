"""Reference embeddings from plain transformers (+ peft), pooled as Lathe documents it."""

from __future__ import annotations

from pathlib import Path


def reference_embedding(
    base: Path, text: str, pooling: str, adapter: Path | None = None
) -> list[float]:
    import torch
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    if pooling == "mean":
        model = AutoModel.from_pretrained(base).eval()
    else:
        model = AutoModelForCausalLM.from_pretrained(base).eval()
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter).eval()
    enc = tok(text, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc, output_hidden_states=True).hidden_states[-1][0]
    pooled = hidden.mean(0) if pooling == "mean" else hidden[-1]
    return torch.nn.functional.normalize(pooled, dim=-1).tolist()
