"""Training clients in memory: one copy of each base model's weights, one LoRA adapter and
one AdamW state per client.

All clients on a base share a single peft model holding every client's adapter by name; a
request activates its client's adapter, so base weights are loaded once however many
organizations train on them, and a client's gradients land only on its own adapter's
parameters (the base is frozen), which is what keeps clients apart.

LoRA alpha is fixed at 32 (Tinker's default; the SDK sends no alpha), so the scale is 32/rank.
"""

from __future__ import annotations

import io
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch

from core.errors import InvalidRequest
from core.settings import Settings

LORA_ALPHA = 32
ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")
UNEMBED = ("lm_head",)
SAMPLER_CACHE = 8
"""Sampler-weight adapters kept loaded per base (least recently used go first)."""


@dataclass
class Base:
    name: str
    model: Any  # a peft PeftModel once the first adapter is added, else the plain model
    tokenizer: Any
    max_context: int
    samplers: OrderedDict[str, str] = field(default_factory=OrderedDict)  # path -> adapter


@dataclass
class Client:
    model_id: str
    base: Base
    adapter: str
    lora: dict[str, Any]
    params: dict[str, torch.nn.Parameter]
    optimizer: torch.optim.AdamW | None = None
    accumulated: bool = False


def adapter_name(key: str, prefix: str = "c_") -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_]", "_", key)


def _targets(model: Any, lora: dict[str, Any]) -> list[str]:
    wanted = (ATTN if lora["train_attn"] else ()) + (MLP if lora["train_mlp"] else ())
    wanted += UNEMBED if lora["train_unembed"] else ()
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    found = [t for t in wanted if t in present]
    if not found:
        raise InvalidRequest(
            "no module of this base model matches the LoRA flags", param="lora_config"
        )
    return found


class LoraPool:
    def __init__(self, settings: Settings, device: str = "cpu") -> None:
        self.settings = settings
        self.device = device
        self.bases: dict[str, Base] = {}
        self.clients: dict[str, Client] = {}

    def base(self, name: str) -> Base:
        if name not in self.bases:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from core.registry import base_model_path

            path = base_model_path(self.settings, name)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
            model.to(self.device).eval()
            for p in model.parameters():
                p.requires_grad_(False)
            ctx = getattr(model.config, "max_position_embeddings", 2048)
            self.bases[name] = Base(name, model, AutoTokenizer.from_pretrained(path), ctx)
        return self.bases[name]

    def _add_adapter(self, base: Base, adapter: str, lora: dict[str, Any]) -> None:
        from peft import LoraConfig, PeftModel, get_peft_model

        cfg = LoraConfig(
            r=lora["rank"],
            lora_alpha=LORA_ALPHA,
            lora_dropout=0.0,
            target_modules=_targets(base.model, lora),
        )
        seed = lora.get("seed")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed if seed is not None else torch.seed())
            if isinstance(base.model, PeftModel):
                base.model.add_adapter(adapter, cfg)
            else:
                base.model = get_peft_model(base.model, cfg, adapter_name=adapter)
        base.model.to(self.device)

    def create(self, model_id: str, base_name: str, lora: dict[str, Any]) -> Client:
        base = self.base(base_name)
        adapter = adapter_name(model_id)
        self._add_adapter(base, adapter, lora)
        params = {n: p for n, p in sorted(base.model.named_parameters()) if f".{adapter}." in n}
        client = Client(model_id, base, adapter, lora, params)
        self.clients[model_id] = client
        return client

    def drop(self, model_id: str) -> None:
        client = self.clients.pop(model_id, None)
        if client is None:
            return
        base = client.base
        if any(c.base is base for c in self.clients.values()):
            base.model.delete_adapter(client.adapter)
        else:  # peft cannot delete its last adapter: free the whole base, reload on next use
            del self.bases[base.name]

    def activate(self, client: Client) -> Any:
        model = client.base.model
        model.set_adapter(client.adapter)
        for p in client.params.values():
            p.requires_grad_(True)
        return model

    # --- state: bytes in storage, portable across adapter names ---

    def state_bytes(self, client: Client, with_optimizer: bool) -> bytes:
        lora = {
            n.replace(f".{client.adapter}.", ".{A}."): p.detach().cpu()
            for n, p in client.params.items()
        }
        state: dict[str, Any] = {"lora": lora, "config": client.lora, "base": client.base.name}
        if with_optimizer and client.optimizer is not None:
            state["optimizer"] = client.optimizer.state_dict()
        buf = io.BytesIO()
        torch.save(state, buf)
        return buf.getvalue()

    def load_state(self, client: Client, data: bytes, with_optimizer: bool) -> None:
        state = torch.load(io.BytesIO(data), map_location=self.device, weights_only=True)
        self._copy_lora(state["lora"], client.params, client.adapter)
        client.optimizer = None
        client.accumulated = False
        for p in client.params.values():
            p.grad = None
        if with_optimizer and "optimizer" in state:
            opt = torch.optim.AdamW(list(client.params.values()))
            opt.load_state_dict(state["optimizer"])
            client.optimizer = opt

    @staticmethod
    def _copy_lora(saved: dict[str, torch.Tensor], params: dict[str, Any], adapter: str) -> None:
        with torch.no_grad():
            for name, p in params.items():
                key = name.replace(f".{adapter}.", ".{A}.")
                if key not in saved or saved[key].shape != p.shape:
                    raise InvalidRequest(
                        "the saved state does not fit this training client (another rank, base "
                        "or set of trained modules)",
                        param="path",
                    )
                p.copy_(saved[key])

    def sampler_adapter(self, base: Base, path: str, data_fn) -> str:
        """The adapter holding sampler weights `path` (loaded once through `data_fn`)."""
        if path in base.samplers:
            base.samplers.move_to_end(path)
            return base.samplers[path]
        state = torch.load(io.BytesIO(data_fn()), map_location=self.device, weights_only=True)
        adapter = adapter_name(str(abs(hash(path))), prefix="s_")
        self._add_adapter(base, adapter, state["config"])
        params = {n: p for n, p in base.model.named_parameters() if f".{adapter}." in n}
        self._copy_lora(state["lora"], params, adapter)
        for p in params.values():
            p.requires_grad_(False)
        base.samplers[path] = adapter
        while len(base.samplers) > SAMPLER_CACHE:
            _, old = base.samplers.popitem(last=False)
            base.model.delete_adapter(old)
        return adapter


def export_peft(client: Client, out_dir: Any) -> None:
    """The client's adapter as a standard peft artifact (adapter_config.json +
    adapter_model.safetensors + tokenizer + Lathe's manifest), which the inference service
    serves like a fine-tuned model."""
    import json
    import shutil
    import tempfile
    from pathlib import Path

    out = Path(out_dir)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:  # the caller's temp dir
        client.base.model.save_pretrained(tmp, selected_adapters=[client.adapter])
        src = Path(tmp) / client.adapter  # peft writes a non-default adapter in a subfolder
        shutil.copytree(src if src.is_dir() else Path(tmp), out, dirs_exist_ok=True)
    client.base.tokenizer.save_pretrained(out)
    manifest = {
        "format": "peft",
        "adapter_type": "lora",
        "task": "causal_lm",
        "trainable_params": sum(p.numel() for p in client.params.values()),
        "pad_token_id": client.base.tokenizer.pad_token_id,
    }
    (out / "lathe_adapter.json").write_text(json.dumps(manifest, indent=2))
