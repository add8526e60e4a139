"""Local copies of stored models: for serving them, scoring with them and training from them.

A fine-tuned model is an artifact directory in object storage (see core.adapters.save_artifact)
that applies to some base weights. Usually those are its root base model; a job that starts
from another fine-tuned model by merging it first (the RLHF methods, see
core.methods.MERGED_START) writes `lathe_lineage.json` into its artifact, naming the parent
whose merged weights it applies to. So an artifact stays self-describing: materialising any
model needs only settings and storage, never the database.

Everything is cached under `data_dir/stored_models`, written to a temporary directory and
renamed into place, so concurrent processes on one host never see half a model.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.persistence.models import Model
from core.registry import base_model_path
from core.settings import Settings
from core.storage import Storage

LINEAGE = "lathe_lineage.json"
_MANIFEST = "lathe_adapter.json"  # core.adapters.artifacts.MANIFEST, without importing torch


@dataclass(frozen=True)
class StoredModel:
    """What it takes to materialise a model: its id, root base and artifact (None: a base)."""

    id: str
    base_model: str
    artifact_key: str | None = None

    @classmethod
    def of(cls, row: Model) -> StoredModel:
        return cls(row.id, row.base_model, None if row.kind == "base" else row.artifact_key)


def write_lineage(artifact_dir: Path, parent: StoredModel | None) -> None:
    """Record that the artifact applies to `parent`'s merged weights (None: to its base)."""
    if parent is None or parent.artifact_key is None:
        return
    record = {
        "parent": {
            "id": parent.id,
            "base_model": parent.base_model,
            "artifact_key": parent.artifact_key,
        }
    }
    (Path(artifact_dir) / LINEAGE).write_text(json.dumps(record, indent=2))


def load_artifact(base_dir: Path, artifact_dir: Path, device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer) for inference from an artifact and the weights it applies to."""
    from transformers import AutoTokenizer

    from core.adapters import load_for_inference

    has_tokenizer = (artifact_dir / "tokenizer_config.json").exists()
    return (
        load_for_inference(base_dir, artifact_dir, device=device),
        AutoTokenizer.from_pretrained(artifact_dir if has_tokenizer else base_dir),
    )


class ModelStore:
    def __init__(self, settings: Settings, storage: Storage):
        self.settings = settings
        self.storage = storage
        self.root = settings.data_dir.resolve() / "stored_models"

    def artifact_dir(self, model: StoredModel) -> Path:
        """The model's artifact directory, downloaded once."""
        if model.artifact_key is None:
            raise ValueError(f"{model.id} is a base model: it has no artifact")
        prefix = model.artifact_key.rstrip("/")

        def download(tmp: Path) -> None:
            keys = self.storage.list_keys(prefix)
            if not keys:
                raise FileNotFoundError(f"the stored files of {model.id} are gone ({prefix})")
            for key in keys:
                self.storage.download(key, tmp / key[len(prefix) + 1 :])

        return self._cached("artifacts", prefix, download)

    def parent(self, model: StoredModel) -> StoredModel | None:
        """The model whose merged weights this one's artifact applies to, if not its base."""
        if model.artifact_key is None:
            return None
        path = self.artifact_dir(model) / LINEAGE
        if not path.exists():
            return None
        return StoredModel(**json.loads(path.read_text())["parent"])

    def base_dir(self, model: StoredModel) -> Path:
        """The weights the model's artifact applies to."""
        parent = self.parent(model)
        if parent is not None:
            return self.merged_dir(parent)
        return base_model_path(self.settings, model.base_model)

    def merged_dir(self, model: StoredModel) -> Path:
        """A standalone model directory (adapter folded in) to start training from.

        Raises core.adapters.AdapterUnsupported for soft prompts, which cannot be folded."""
        if model.artifact_key is None:
            return base_model_path(self.settings, model.base_model)
        artifact = self.artifact_dir(model)
        manifest = (
            json.loads((artifact / _MANIFEST).read_text())
            if (artifact / _MANIFEST).exists()
            else {}
        )
        if manifest.get("format") == "full":
            return artifact
        from core.adapters import merge_and_save

        base = self.base_dir(model)
        return self._cached(
            "merged", model.artifact_key, lambda tmp: merge_and_save(base, artifact, tmp)
        )

    def load(self, model: StoredModel, device: str = "cpu") -> tuple[Any, Any]:
        """(model, tokenizer) ready for inference: a causal LM or a reward model, per its
        artifact's manifest."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if model.artifact_key is None:
            path = base_model_path(self.settings, model.base_model)
            return (
                AutoModelForCausalLM.from_pretrained(path).to(device).eval(),
                AutoTokenizer.from_pretrained(path),
            )
        return load_artifact(self.base_dir(model), self.artifact_dir(model), device=device)

    def _cached(self, kind: str, key: str, build: Callable[[Path], None]) -> Path:
        dest = self.root / kind / key.strip("/").replace("/", "__")
        if dest.exists():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=dest.parent))
        try:
            build(tmp)
            try:
                os.rename(tmp, dest)
            except OSError:  # another process finished first: theirs is as good
                if not dest.exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dest
