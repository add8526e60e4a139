"""Adapters: how a base model is made trainable (LoRA, QLoRA, full, prompt/prefix tuning, IA3),
and how the result is saved, served and merged.

Imported by the worker and inference only (it imports torch, transformers and peft), never by
the API at start-up.
"""

from core.adapters.artifacts import load_for_inference, merge_and_save, read_manifest, save_artifact
from core.adapters.errors import AdapterUnsupported
from core.adapters.targets import resolve_target_modules
from core.adapters.training import load_for_training, make_optimizer

__all__ = [
    "AdapterUnsupported",
    "load_for_inference",
    "load_for_training",
    "make_optimizer",
    "merge_and_save",
    "read_manifest",
    "resolve_target_modules",
    "save_artifact",
]
