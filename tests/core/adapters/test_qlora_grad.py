"""Are QLoRA's gradients on the CPU right? The LoRA gradients of Lathe's QLoRA model (NF4
bitsandbytes Linear4bit base layers) against the same LoRA on an fp32 copy whose weights are
the dequantized NF4 weights: the same function, so the gradients must agree to rounding.

bitsandbytes warns `gemv_4bit: an autograd kernel was not registered ... silently incorrect
behavior` on CPUs with AVX512-BF16: a Linear4bit that once runs in eval mode without grad (any
evaluation) repacks its weight for a gemv kernel that has no backward, and from then on the
gradient through every frozen base layer is dropped. The second test runs an evaluation first.
"""

from __future__ import annotations

import copy

import pytest
import torch

RTOL = 1e-4  # fp32 rounding of the same matmuls in another order


def _lathe_qlora(tiny_model):
    from core.adapters import load_for_training
    from core.jobspec.job import AdapterSpec

    spec = AdapterSpec(type="qlora", r=4, alpha=8, dropout=0.0, target_modules="all-linear")
    model, _ = load_for_training(tiny_model, spec, device="cpu")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # LoRA B starts at zero, which would zero A's gradient
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return model


def _dequantized_reference(qmodel, tiny_model, dequantized: bool = True):
    """The fp32 base with each 4-bit weight replaced by its dequantized values (or, to show
    the comparison can tell, left unquantized), with the same LoRA."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as bnbf
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    ref = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    linears = dict(ref.named_modules())
    replaced = 0
    for name, module in qmodel.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            target = linears[name.removeprefix("base_model.model.").removesuffix(".base_layer")]
            w = module.weight
            with torch.no_grad():
                if dequantized:
                    target.weight.copy_(
                        bnbf.dequantize_4bit(w.data, w.quant_state).reshape_as(target.weight)
                    )
            replaced += 1
    assert replaced >= 7 * ref.config.num_hidden_layers  # q k v o gate up down, every layer
    ref = get_peft_model(ref, copy.deepcopy(qmodel.peft_config["default"]))
    set_peft_model_state_dict(ref, get_peft_model_state_dict(qmodel))
    return ref.train()


def _lora_grads(model, ids) -> dict[str, torch.Tensor]:
    model.zero_grad()
    model(input_ids=ids, labels=ids).loss.backward()
    return {
        n.replace(".base_layer", ""): p.grad.clone()
        for n, p in model.named_parameters()
        if "lora_" in n
    }


def _max_relative_error(got, want) -> float:
    assert got.keys() == want.keys() and want
    return max(float((got[k] - want[k]).abs().max() / want[k].abs().max()) for k in want)


@pytest.fixture
def models(tiny_model, monkeypatch):
    """As on a CPU with AVX512-BF16 (where bitsandbytes repacks for its gemv kernel), whatever
    this machine has: the repacked path also runs, unvectorised, on other CPUs."""
    pytest.importorskip("bitsandbytes")
    import bitsandbytes.nn.modules as bnb_modules

    monkeypatch.setattr(bnb_modules, "has_avx512bf16", lambda: True)
    qmodel = _lathe_qlora(tiny_model)
    return qmodel, _dequantized_reference(qmodel, tiny_model)


def _ids():
    return torch.randint(3, 500, (2, 24), generator=torch.Generator().manual_seed(1))


def test_qlora_gradients_match_the_dequantized_reference(models, tiny_model):
    qmodel, ref = models
    grads = _lora_grads(qmodel, _ids())
    error = _max_relative_error(grads, _lora_grads(ref, _ids()))
    print(f"QLoRA CPU max relative LoRA-gradient error: {error:.2e}")
    assert error < RTOL
    # The comparison can tell: the unquantized weights give measurably other gradients.
    plain = _dequantized_reference(qmodel, tiny_model, dequantized=False)
    assert _max_relative_error(grads, _lora_grads(plain, _ids())) > 100 * RTOL


def test_qlora_gradients_stay_right_after_an_evaluation(models):
    """Validation runs in eval mode without grad; the next training step must still be right."""
    qmodel, ref = models
    qmodel.eval()
    with torch.no_grad():
        qmodel(input_ids=_ids())
    qmodel.train()
    error = _max_relative_error(_lora_grads(qmodel, _ids()), _lora_grads(ref, _ids()))
    print(f"QLoRA CPU max relative LoRA-gradient error after an evaluation: {error:.2e}")
    assert error < RTOL  # without core.adapters.quantization.disable_bf16_repack: 3.0
    import bitsandbytes as bnb

    for module in qmodel.modules():
        if isinstance(module, bnb.nn.Linear4bit):  # no repacking into the no-autograd layout
            assert not getattr(module.weight.quant_state, "packing_format_for_cpu", False)
