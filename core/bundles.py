"""`GET /v1/models/{model}/content`: an adapter with its base, loadable offline as downloaded.

An adapter names its base in `adapter_config.json`. A hub base's hub id loads anywhere with a
hub; a registry name (`tiny-llama`, a path base) would send `AutoPeftModelForCausalLM` looking
on a model hub for a model that is not there. So where the base is on no hub and this server
hands it out, the default download is this bundle: the base's own files under `base/`, and
`base_model_name_or_path` the relative folder `base`. transformers resolves a relative path
against the working directory, so its README says to load it from inside the unzipped folder.
`format=bundle` asks for it explicitly (also for a hub base this server hands out).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from core.errors import InvalidRequest
from core.exports import exportable, file_chunks, model_zip, stored_keys, zip_entries
from core.model_store import StoredModel
from core.portable import (
    ADAPTER_CONFIG,
    MANIFEST,
    README,
    base_source,
    check_downloadable,
    downloadable,
    needs_its_base,
    parent_of,
    portable_manifest,
)
from core.registry import base_model_path
from core.settings import Settings
from core.storage import Storage

BASE_DIR = "base"

BUNDLE_README = """# {model}

A LoRA-family adapter trained by Lathe, bundled with its base model ({base}) in `base/`, so
it loads as downloaded, with no model hub. `adapter_config.json` names the base by the
relative path `base`, which transformers resolves against the working directory, so load it
from inside this folder:

```python
import os
from peft import AutoPeftModelForCausalLM
from transformers import AutoTokenizer

os.chdir("path/to/this/folder")
model = AutoPeftModelForCausalLM.from_pretrained(".")
tokenizer = AutoTokenizer.from_pretrained(".")
```

Or load the base yourself from anywhere:
`PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("<folder>/base"), "<folder>")`.
"""


def download_zip(settings: Settings, storage: Storage, model: StoredModel) -> Iterator[bytes]:
    """What `GET /v1/models/{model}/content` streams without `format`: the bundle where the
    adapter would not load as downloaded without its base and the base may be handed out,
    else the model as stored (core.exports)."""
    if model.artifact_key is not None and _bundled(settings, storage, model):
        return bundle_zip(settings, storage, model)
    return model_zip(settings, storage, model)


def _bundled(settings: Settings, storage: Storage, model: StoredModel) -> bool:
    prefix = model.artifact_key.rstrip("/")  # type: ignore[union-attr]
    return (
        storage.exists(f"{prefix}/{ADAPTER_CONFIG}")
        and needs_its_base(settings, model, parent_of(storage, prefix))
        and downloadable(base_source(settings, model.base_model))
    )


def bundle_zip(settings: Settings, storage: Storage, model: StoredModel) -> Iterator[bytes]:
    """The adapter as stored, its base's files under base/, and a README. Checks run now (a
    refusal is an error response, not a broken zip)."""
    prefix = exportable(model).artifact_key.rstrip("/")  # type: ignore[union-attr]
    keys = stored_keys(storage, prefix, model.id)
    if not any(k == f"{prefix}/{ADAPTER_CONFIG}" for k in keys):
        raise InvalidRequest(
            f"{model.id} is a whole model, already standalone: download it without format",
            param="format",
        )
    parent = parent_of(storage, prefix)
    if parent is not None:
        raise InvalidRequest(
            f"{model.id} applies to the merged weights of {parent.id}: download "
            f"{parent.id} with format=merged and this adapter as stored",
            param="format",
        )
    check_downloadable(settings, model.base_model)
    base = base_model_path(settings, model.base_model)
    rewrite = {
        ADAPTER_CONFIG: _relative_base,
        MANIFEST: lambda raw: _bundled_manifest(portable_manifest(raw, settings, model, None)),
    }

    def entries() -> Iterator[tuple[str, Iterable[bytes]]]:
        for key in keys:
            name = key[len(prefix) + 1 :]
            if name == README:  # peft's empty model card: ours follows
                continue
            chunks: Iterable[bytes] = storage.iter_bytes(key)
            if name in rewrite:
                chunks = [rewrite[name](b"".join(chunks))]
            yield name, chunks
        for path in _files(base):
            yield f"{BASE_DIR}/{path.relative_to(base).as_posix()}", file_chunks(path)
        text = BUNDLE_README.format(model=model.id, base=model.base_model)
        yield README, [text.encode()]

    return zip_entries(entries())


def _relative_base(raw: bytes) -> bytes:
    config = json.loads(raw)
    config["base_model_name_or_path"] = BASE_DIR
    config.pop("revision", None)
    return json.dumps(config, indent=2).encode()


def _bundled_manifest(raw: bytes) -> bytes:
    """The manifest's `base` block says where the base's files are: in the zip."""
    manifest = json.loads(raw)
    manifest["base"]["path"] = BASE_DIR
    return json.dumps(manifest, indent=2).encode()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
