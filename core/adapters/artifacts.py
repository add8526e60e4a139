"""Saving a trained adapter, loading it back for inference, and merged export.

An artifact directory is self-describing: `lathe_adapter.json` (the manifest) says whether it
holds a peft adapter or a full model, for which task; so the inference side never needs the job
spec. Directories without a manifest (adapters trained elsewhere) are recognised by their files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, PreTrainedTokenizerBase

from core.adapters.compat import fix_soft_prompt_generation
from core.adapters.errors import AdapterUnsupported
from core.adapters.peft_setup import MERGEABLE, SOFT_PROMPTS, TASK_TYPES
from core.adapters.quantization import check_qlora_supported, disable_bf16_repack, nf4_config
from core.adapters.training import ensure_pad_token, model_class
from core.jobspec.job import AdapterSpec

MANIFEST = "lathe_adapter.json"

_PEFT_TYPES = {
    "LORA": "lora",
    "IA3": "ia3",
    "PROMPT_TUNING": "prompt_tuning",
    "PREFIX_TUNING": "prefix_tuning",
}


def _task_of(model: nn.Module) -> str:
    peft_config = getattr(model, "peft_config", None)
    if peft_config:
        task_type = next(iter(peft_config.values())).task_type
        return next(k for k, v in TASK_TYPES.items() if v == task_type)
    return "seq_cls" if type(model).__name__.endswith("ForSequenceClassification") else "causal_lm"


def _param_counts(model: nn.Module) -> tuple[int, int]:
    # peft's count knows that a 4-bit parameter packs two weights per byte.
    if hasattr(model, "get_nb_trainable_parameters"):
        return model.get_nb_trainable_parameters()
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def save_artifact(
    model: nn.Module, tokenizer: PreTrainedTokenizerBase, spec: AdapterSpec, out_dir: Path
) -> dict:
    """Write the trained adapter (or full model) + tokenizer + manifest; return the manifest.

    peft types store only adapter weights (adapter_config.json + adapter_model.safetensors).
    A QLoRA adapter is a plain LoRA: it loads onto the unquantized base as well.
    """
    from core.training.distributed import gather_for_save

    writes, state_dict = gather_for_save(model)  # one job across devices: rank 0 writes
    if not writes:
        return {}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trainable, total = _param_counts(model)
    # safetensors is the only format transformers 5 writes; under FSDP the gathered weights
    model.save_pretrained(out_dir, state_dict=state_dict)
    tokenizer.save_pretrained(out_dir)
    task = _task_of(model)
    manifest: dict[str, Any] = {
        "format": "full" if spec.type == "full" else "peft",
        "adapter_type": spec.type,
        "task": task,
        "trainable_params": int(trainable),
        "total_params": int(total),
        "pad_token_id": tokenizer.pad_token_id,
    }
    if task == "seq_cls":
        manifest["num_labels"] = model.config.num_labels
        # Class names in id order: a peft adapter does not save the base config that holds them.
        manifest["labels"] = [model.config.id2label[i] for i in range(model.config.num_labels)]
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def read_manifest(artifact_dir: Path) -> dict:
    """The manifest, or one inferred from the files of an artifact made without Lathe."""
    artifact_dir = Path(artifact_dir)
    if (artifact_dir / MANIFEST).exists():
        return json.loads((artifact_dir / MANIFEST).read_text())
    if (artifact_dir / "adapter_config.json").exists():
        from peft import PeftConfig

        config = PeftConfig.from_pretrained(artifact_dir)
        peft_type = str(getattr(config.peft_type, "value", config.peft_type))
        task = next((k for k, v in TASK_TYPES.items() if v == config.task_type), "causal_lm")
        return {
            "format": "peft",
            "adapter_type": _PEFT_TYPES.get(peft_type, peft_type.lower()),
            "task": task,
        }
    if (artifact_dir / "config.json").exists():
        archs = json.loads((artifact_dir / "config.json").read_text()).get("architectures") or []
        seq_cls = any(a.endswith("ForSequenceClassification") for a in archs)
        return {
            "format": "full",
            "adapter_type": "full",
            "task": "seq_cls" if seq_cls else "causal_lm",
        }
    raise FileNotFoundError(f"{artifact_dir} holds neither an adapter nor a model")


def load_for_inference(
    base_path: Path,
    artifact_dir: Path,
    *,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    quantized: bool = False,
) -> nn.Module:
    """Eval-mode, frozen model: the base with the adapter applied, or the saved full model.

    `quantized=True` loads the base in 4-bit NF4 as in QLoRA training, which reproduces the
    training-time outputs exactly and saves memory; the default serves adapters on the
    full-precision base, which works on any hardware. `dtype` is the (non-quantized) weight
    dtype: fp32 is exact everywhere, bf16 halves memory on GPUs.
    """
    manifest = read_manifest(artifact_dir)
    cls = model_class(manifest["task"])
    if manifest["format"] == "full":
        return _frozen(cls.from_pretrained(artifact_dir, dtype=dtype).to(device))

    from peft import PeftModel

    kwargs: dict[str, Any] = {"dtype": dtype}
    if manifest.get("num_labels") is not None:
        kwargs["num_labels"] = manifest["num_labels"]
    if manifest.get("labels"):
        kwargs["id2label"] = dict(enumerate(manifest["labels"]))
        kwargs["label2id"] = {label: i for i, label in enumerate(manifest["labels"])}
    if quantized:
        check_qlora_supported(device)
        qconfig = nf4_config(device, bf16=False)
        kwargs.update(quantization_config=qconfig, device_map={"": device})
    base = cls.from_pretrained(base_path, **kwargs)
    if manifest.get("pad_token_id") is not None:
        base.config.pad_token_id = manifest["pad_token_id"]
    elif base.config.pad_token_id is None:
        from transformers import AutoTokenizer

        ensure_pad_token(AutoTokenizer.from_pretrained(base_path), base)
    if quantized:
        disable_bf16_repack(base)  # serve the matmul the adapter was trained on
    else:
        base.to(device)
    model = PeftModel.from_pretrained(base, artifact_dir)
    if manifest["adapter_type"] in SOFT_PROMPTS:
        fix_soft_prompt_generation(model)
    return _frozen(model)


def _frozen(model: nn.Module) -> nn.Module:
    # peft leaves some prompt-learning parameters trainable even when loaded for inference.
    return model.requires_grad_(False).eval()


def _checkpoint_dtype(base_path: Path) -> torch.dtype:
    saved = getattr(AutoConfig.from_pretrained(base_path), "dtype", None)
    if isinstance(saved, str):
        saved = getattr(torch, saved, None)
    return saved if isinstance(saved, torch.dtype) and saved.is_floating_point else torch.float32


def merge_and_save(base_path: Path, artifact_dir: Path, out_dir: Path) -> None:
    """Export a standalone model (base + adapter folded in) that needs no peft to serve.

    Soft prompts (prompt/prefix tuning) are extra inputs, not weight deltas: nothing to fold.
    """
    artifact_dir, out_dir = Path(artifact_dir), Path(out_dir)
    manifest = read_manifest(artifact_dir)
    adapter_type = manifest["adapter_type"]
    if adapter_type not in MERGEABLE:
        raise AdapterUnsupported(
            f"{adapter_type} adapters cannot be merged into the base model: the learned soft "
            "prompt is not a weight of the base; serve the adapter with the base instead"
        )
    if manifest["format"] == "full":
        shutil.copytree(artifact_dir, out_dir, dirs_exist_ok=True)
        return
    # Merge in fp32 (exact), then store in the base checkpoint's own dtype: a bf16 base merged
    # and saved as fp32 would be twice the size the client expects.
    merged = load_for_inference(base_path, artifact_dir).merge_and_unload()
    merged.to(_checkpoint_dtype(base_path)).save_pretrained(out_dir)
    from transformers import AutoTokenizer

    has_tokenizer = (artifact_dir / "tokenizer_config.json").exists()
    AutoTokenizer.from_pretrained(artifact_dir if has_tokenizer else base_path).save_pretrained(
        out_dir
    )
    merged_manifest = {
        **manifest,
        "format": "full",
        "adapter_type": "full",
        "merged_from": adapter_type,
    }
    (out_dir / MANIFEST).write_text(json.dumps(merged_manifest, indent=2))
