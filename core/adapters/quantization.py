"""4-bit NF4 loading for QLoRA, via bitsandbytes.

bitsandbytes has backends for CUDA and (since 0.4x) the CPU, among others; whether the one for
the requested device works is only known by trying, so we quantize a tiny tensor once per device
and turn any failure into AdapterUnsupported with the underlying reason.
"""

from __future__ import annotations

from functools import cache

import torch

from core.adapters.errors import AdapterUnsupported
from core.adapters.targets import HEAD_NAMES


@cache
def qlora_unavailable_reason(device_type: str) -> str | None:
    """None if bnb can 4-bit quantize on `device_type` ("cpu", "cuda", ...), else why not."""
    try:
        import bitsandbytes as bnb
        import bitsandbytes.functional as bnbf
    except Exception as exc:  # ImportError, or a broken native library
        return f"bitsandbytes cannot be imported ({type(exc).__name__}: {exc})"
    try:
        weight = torch.randn(64, 64, device=device_type)
        packed, state = bnbf.quantize_4bit(weight, quant_type="nf4", compress_statistics=True)
        x = torch.randn(3, 64, device=device_type)
        out = bnb.matmul_4bit(x, packed.t(), quant_state=state)  # what Linear4bit runs
        expected = x @ bnbf.dequantize_4bit(packed, state, quant_type="nf4").t()
        if not torch.allclose(out, expected, atol=1e-3, rtol=1e-3):
            return "bitsandbytes 4-bit matmul disagrees with its own dequantized weights"
    except Exception as exc:
        return f"bitsandbytes has no working 4-bit backend for {device_type!r} ({exc})"
    return None


def check_qlora_supported(device: str) -> None:
    """Raise AdapterUnsupported unless QLoRA's 4-bit base model can live on `device`."""
    reason = qlora_unavailable_reason(torch.device(device).type)
    if reason is not None:
        raise AdapterUnsupported(f"qlora is not available on device {device!r}: {reason}")


def nf4_config(device: str, bf16: bool):
    """The QLoRA paper's recipe: NF4 weights, double-quantized statistics.

    Compute in bf16 only on CUDA when asked; CPU 4-bit matmuls are written for fp32.
    Output heads stay unquantized: they are small, sensitive, and a fresh classifier head has
    to train (a 4-bit weight cannot require grad).
    """
    from transformers import BitsAndBytesConfig

    on_cuda = torch.device(device).type == "cuda"
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if bf16 and on_cuda else torch.float32,
        llm_int8_skip_modules=sorted(HEAD_NAMES),
    )


def disable_bf16_repack(model: torch.nn.Module) -> int:
    """Keep every 4-bit layer on bitsandbytes' fp32 matmul (training and serving); returns count.

    On a CPU with AVX512-BF16, bitsandbytes 0.50 repacks a Linear4bit's weight for a fast bf16
    gemv kernel the first time the layer runs in eval mode without grad, and every later forward
    takes that kernel. Two things go wrong: it has no autograd, so the gradient through the
    frozen base weight is silently dropped during training (LoRA gradients off by 300 %, see
    tests/core/adapters/test_qlora_grad.py); and it computes in bf16, so an adapter served on
    the repacked base no longer gives the logits it was trained to give (off by up to 0.1, see
    test_roundtrip.py::test_reload_gives_trained_logits[qlora]). Training and the inference
    loader both call this, so a QLoRA model computes the same numbers on every CPU.
    """
    from bitsandbytes.nn import Linear4bit

    layers = [m for m in model.modules() if isinstance(m, Linear4bit)]
    for layer in layers:
        layer.support_avx512bf16_for_cpu = False
    return len(layers)
