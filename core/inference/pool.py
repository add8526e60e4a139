"""Loaded models for the in-process engine: one shared base per base model with its LoRA
adapters attached (PEFT multi-adapter, evicted least recently used unless pinned), and a
separate LRU of whole models for what cannot share a base (full fine-tunes, IA3, soft prompts,
adapters on merged parents, classifiers and reward models).

Attaching and evicting adapters only happens on the engine's scheduler thread, between
decode steps, and never detaches one that a running row decodes with.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from core.inference.cache import ModelCache
from core.model_store import LINEAGE, ModelStore, StoredModel
from core.registry import base_model_path
from core.settings import Settings
from core.storage import Storage

SHARED_TYPES = {"lora", "qlora"}  # a QLoRA adapter is a plain LoRA on the unquantized base
SOFT_PROMPTS = {"prompt_tuning", "prefix_tuning"}


@dataclass(frozen=True)
class Unit:
    """What one batch runs on: `key` groups requests that may share a batch."""

    key: str
    model: Any
    tokenizer: Any
    adapter: str | None  # the row's adapter on the shared base (None: the base itself)
    batched: bool  # False: soft prompts, served one at a time by model.generate


def manifest(store: ModelStore, model: StoredModel) -> dict:
    if model.artifact_key is None:
        return {"format": "base", "adapter_type": None, "task": "causal_lm"}
    path = store.artifact_dir(model) / "lathe_adapter.json"
    if path.exists():
        return json.loads(path.read_text())
    from core.adapters.artifacts import read_manifest  # an adapter made elsewhere

    return read_manifest(store.artifact_dir(model))


def _safe(model_id: str) -> str:
    return model_id.replace(".", "_").replace(":", "_")  # peft names become module keys


def adapter_name(model: StoredModel) -> str:
    return _safe(model.id)


class ModelPool:
    def __init__(self, settings: Settings, storage: Storage):
        self.settings = settings
        self.store = ModelStore(settings, storage)
        self.capacity = max(1, settings.inference.cache_size)
        self.pinned = {_safe(m) for m in settings.inference.pinned_models}
        self.whole = ModelCache(settings.inference.cache_size)
        self._bases: dict[str, Any] = {}
        self._adapters: OrderedDict[str, str] = OrderedDict()  # adapter name → base model
        self._tokenizers: dict[str, Any] = {}
        self._forgotten: set[str] = set()  # adapter names to detach between batches
        self._lock = threading.RLock()

    def shares_base(self, model: StoredModel) -> bool:
        """A LoRA on its root base (or the base itself): served on the shared base."""
        if model.artifact_key is None:
            return True
        info = manifest(self.store, model)
        return (
            info.get("format") == "peft"
            and info.get("adapter_type") in SHARED_TYPES
            and info.get("task") == "causal_lm"
            and not (self.store.artifact_dir(model) / LINEAGE).exists()
        )

    def tokenizer(self, model: StoredModel) -> Any:
        """The model's tokenizer (its artifact's own, else its base's), loaded once."""
        from transformers import AutoTokenizer

        with self._lock:
            if model.id not in self._tokenizers:
                path = base_model_path(self.settings, model.base_model)
                if model.artifact_key is not None:
                    artifact = self.store.artifact_dir(model)
                    if (artifact / "tokenizer_config.json").exists():
                        path = artifact
                if len(self._tokenizers) > 4 * self.capacity:
                    self._tokenizers.pop(next(iter(self._tokenizers)))
                self._tokenizers[model.id] = AutoTokenizer.from_pretrained(path)
            return self._tokenizers[model.id]

    def unit(self, model: StoredModel, keep: set[str] = frozenset()) -> Unit:  # type: ignore[assignment]
        """Load what `model` runs on; `keep`: adapter names the current batch needs."""
        if self.shares_base(model):
            return self._shared(model, keep)
        loaded = self.whole.get_or_load(model.id, lambda: self.store.load(model))
        soft = manifest(self.store, model).get("adapter_type") in SOFT_PROMPTS
        return Unit(model.id, loaded[0], loaded[1], None, batched=not soft)

    def _base(self, name: str) -> Any:
        from transformers import AutoModelForCausalLM

        if name not in self._bases:
            path = base_model_path(self.settings, name)
            self._bases[name] = AutoModelForCausalLM.from_pretrained(path).eval()
        return self._bases[name]

    def _shared(self, model: StoredModel, keep: set[str]) -> Unit:
        with self._lock:
            key = f"base:{model.base_model}"
            base = self._base(model.base_model)
            tok = self.tokenizer(model)
            if model.artifact_key is None:
                return Unit(key, base, tok, None, True)
            name = adapter_name(model)
            if name not in self._adapters:
                base = self._attach(model, name, base)
            self._adapters.move_to_end(name)
            self._evict(keep | {name})
            return Unit(key, self._bases[model.base_model], tok, name, True)

    def _attach(self, model: StoredModel, name: str, base: Any) -> Any:
        from peft import PeftModel

        directory = self.store.artifact_dir(model)
        if hasattr(base, "peft_config"):
            base.load_adapter(directory, adapter_name=name)
        else:
            base = PeftModel.from_pretrained(base, directory, adapter_name=name)
            self._bases[model.base_model] = base
        base.requires_grad_(False).eval()
        self._adapters[name] = model.base_model
        return base

    def _evict(self, keep: set[str]) -> None:
        for name in list(self._adapters):
            if len(self._adapters) <= self.capacity:
                return
            if name in keep or name in self.pinned:
                continue
            self._detach(name)

    def _detach(self, name: str) -> None:
        """Drop one adapter from its base. The last one on a base is unloaded with the PEFT
        wrapper itself: an empty PeftModel fails every forward pass (a KeyError on the adapter
        it lost), which would break the base and every model on it."""
        base_name = self._adapters.pop(name)
        base = self._bases[base_name]
        if any(b == base_name for b in self._adapters.values()):
            base.delete_adapter(name)
        else:
            self._bases[base_name] = base.unload().eval()

    def shared_model(self, group: str) -> Any:
        """The model a shared-base batch (`group` "base:<name>") runs on now: attaching its
        first adapter wraps the base, detaching its last one unwraps it."""
        with self._lock:
            return self._bases.get(group.removeprefix("base:"))

    def forget(self, model: StoredModel) -> None:
        """A deleted model: drop what is loaded of it. Adapters are detached by the scheduler
        thread before its next batch (`detach_forgotten`), never under a running one."""
        with self._lock:
            self.whole.discard(model.id)
            self._tokenizers.pop(model.id, None)
            self._forgotten.add(adapter_name(model))

    def detach_forgotten(self, keep: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        """Detach forgotten adapters, except those rows still decode with (`keep`: later)."""
        with self._lock:
            for name in self._forgotten & set(self._adapters) - keep:
                self._detach(name)
            self._forgotten &= keep

    def loaded_adapters(self) -> list[str]:
        return list(self._adapters)
