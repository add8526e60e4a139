"""Reference scores for the scoring tests: a plain transformers (+ peft) forward pass over
the same weights Lathe serves, and a fine-tune's adapter fetched through the API's download."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx


def download_adapter(stack, model: str, dest: Path) -> Path:
    response = httpx.get(
        f"{stack.url}/models/{model}/content",
        headers={"Authorization": f"Bearer {stack.key}"},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    zipfile.ZipFile(io.BytesIO(response.content)).extractall(dest)
    return dest


def reference_logprobs(base: Path, ids: list[int], adapter: Path | None = None) -> list[float]:
    """log P(ids[j] | ids[:j]) for j ≥ 1, from one unpadded forward pass."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, torch_dtype=torch.float32).eval()
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    return [float(logp[j - 1, ids[j]]) for j in range(1, len(ids))]
