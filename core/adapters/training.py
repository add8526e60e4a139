"""Load a base model ready to train with the requested adapter, and its optimizer."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from core.adapters.compat import fix_soft_prompt_generation
from core.adapters.errors import AdapterUnsupported
from core.adapters.peft_setup import SOFT_PROMPTS, BuildContext, Task, build_peft_config
from core.adapters.quantization import check_qlora_supported, disable_bf16_repack, nf4_config
from core.jobspec.job import AdapterSpec


def model_class(task: Task) -> type:
    """The transformers Auto class that loads a model for `task`."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    return {"causal_lm": AutoModelForCausalLM, "seq_cls": AutoModelForSequenceClassification}[task]


def ensure_pad_token(tokenizer: PreTrainedTokenizerBase, model: nn.Module | None = None) -> None:
    """Batching needs a pad token; many causal LMs ship without one.

    Reusing EOS adds no embedding row (which would change the base model's shape, and every
    adapter would then need the resized embeddings). The model config must agree, or
    sequence classification cannot find each row's last real token.
    """
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError("tokenizer has neither a pad nor an eos token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
    if model is not None:
        model.config.pad_token_id = tokenizer.pad_token_id


def load_for_training(
    base_path: Path,
    spec: AdapterSpec,
    *,
    task: Task = "causal_lm",
    num_labels: int | None = None,
    device: str = "cpu",
    bf16: bool = False,
    gradient_checkpointing: bool = False,
) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """Base model from `base_path` wrapped for training with `spec`; returns (model, tokenizer).

    Only the adapter's parameters require grad (all of them for `full`). The model is in
    train mode on `device`. Raises AdapterUnsupported when the method cannot run here.
    """
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoTokenizer

    if task == "seq_cls" and num_labels is None:
        raise ValueError("task='seq_cls' needs num_labels")
    if gradient_checkpointing and spec.type == "prefix_tuning":  # peft refuses it
        raise AdapterUnsupported("prefix_tuning does not work with gradient checkpointing")
    base_path = Path(base_path)
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    kwargs: dict = {"dtype": torch.bfloat16 if bf16 else torch.float32}
    if task == "seq_cls":
        kwargs["num_labels"] = num_labels
    quantized = spec.type == "qlora"
    if quantized:
        check_qlora_supported(device)
        qconfig = nf4_config(device, bf16)
        # Non-quantized parts (norms, embeddings, head) load in the compute dtype.
        kwargs.update(
            quantization_config=qconfig,
            device_map={"": device},
            dtype=qconfig.bnb_4bit_compute_dtype,
        )
    model = model_class(task).from_pretrained(base_path, **kwargs)
    if quantized:
        disable_bf16_repack(model)  # evaluations must not switch it to a kernel without backward
    ensure_pad_token(tokenizer, model)
    if not quantized:
        model.to(device)

    if quantized:
        # Casts norms/head to fp32 and makes inputs require grad so checkpointing works.
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    elif gradient_checkpointing:
        # Non-reentrant checkpointing needs no input grads, so frozen embeddings are fine.
        model.activation_checkpointing_enable(
            activation_checkpointing_kwargs={"use_reentrant": False}
        )
        model.config.use_cache = False

    config = build_peft_config(spec, BuildContext(model=model, task=task, base_path=base_path))
    if config is None:
        model.requires_grad_(True)
    else:
        model = get_peft_model(model, config)
        if spec.type in SOFT_PROMPTS:  # generation metrics during training
            fix_soft_prompt_generation(model)
    model.train()
    return model, tokenizer


def make_optimizer(
    model: nn.Module, spec: AdapterSpec, lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters; 8-bit AdamW (paged on CUDA) for QLoRA.

    Weight decay skips biases and norm weights (1-D tensors), as HF Trainer does: decaying
    them towards zero only fights the normalisation. QLoRA uses the paper's paged 8-bit AdamW,
    whose state bitsandbytes pages between GPU and host memory under pressure. Paging is a
    CUDA unified-memory feature: on other devices bnb would warn and run unpaged anyway, so
    we ask for the unpaged 8-bit AdamW there explicitly (same update, same 8-bit state).
    """
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    groups = [
        {"params": [p for _, p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for _, p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if spec.type == "qlora":
        try:
            from bitsandbytes.optim import AdamW8bit, PagedAdamW8bit
        except Exception as exc:
            raise AdapterUnsupported(f"qlora needs bitsandbytes' 8-bit AdamW: {exc}") from exc
        on_cuda = params[0][1].device.type == "cuda"
        return (PagedAdamW8bit if on_cuda else AdamW8bit)(groups, lr=lr)
    return torch.optim.AdamW(groups, lr=lr)
