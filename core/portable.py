"""What downloaded weights say about the weights they apply to: names, not server paths.

peft writes the base's local directory into `adapter_config.json` (`base_model_name_or_path`),
a path that means nothing off the server. On download (core.exports) it is rewritten to a name
the user can resolve: the hub id (with `revision`) for a hub base, else the registry name, which
is also the directory a base downloaded from `GET /v1/models/{name}/content` unzips to; and a
`base` block in Lathe's manifest (lathe_adapter.json) says where the base comes from and
whether this server hands it out. The
stored artifact is left as it is: the server keeps loading it from its own paths.
"""

from __future__ import annotations

import json
from typing import Any

from core.errors import InvalidRequest
from core.model_store import LINEAGE, StoredModel
from core.settings import BaseModelSource, Settings
from core.storage import Storage

ADAPTER_CONFIG = "adapter_config.json"
MANIFEST = "lathe_adapter.json"  # core.adapters.artifacts.MANIFEST, without importing torch
README = "README.md"  # peft's empty model card in a stored adapter: replaced on download

_LOAD = """```python
from peft import AutoPeftModelForCausalLM
from transformers import AutoTokenizer

model = AutoPeftModelForCausalLM.from_pretrained("path/to/this/folder")
tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")
```
"""
_OWN_BASE = """Or load the base yourself, from wherever you keep it:
`PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("<base folder>"), "<this folder>")`.
"""


def downloadable(source: BaseModelSource) -> bool:
    """The builtin model is Lathe's own (random weights from a fixed seed); any other base is
    handed out only where the operator, who knows its licence, set `downloadable`."""
    if source.downloadable is not None:
        return source.downloadable
    return source.source == "builtin"


def base_source(settings: Settings, name: str) -> BaseModelSource:
    source = settings.base_models.get(name)
    if source is None:
        raise InvalidRequest(f"{name} is not a base model of this server", param="model")
    return source


def check_downloadable(settings: Settings, name: str) -> None:
    source = base_source(settings, name)
    if not downloadable(source):
        hub = f"; get it from the hub: {source.hub_id}" if source.hub_id else ""
        raise InvalidRequest(
            f"{name}: this server does not hand out this base model's weights (its licence may "
            f"not allow it; an operator allows it with `downloadable` in LATHE_BASE_MODELS){hub}",
            param="model",
            code="model_not_downloadable",
        )


def base_reference(settings: Settings, name: str) -> dict[str, Any]:
    """The manifest's `base` block: which base, from where, at which revision, downloadable here."""
    source = base_source(settings, name)
    ref: dict[str, Any] = {"name": name, "source": source.source}
    if source.source == "hub":
        ref |= {"hub_id": source.hub_id, "revision": source.revision or "main"}
    if source.license:
        ref["license"] = source.license
    ref["download"] = f"/v1/models/{name}/content" if downloadable(source) else None
    return ref


def parent_of(storage: Storage, artifact_prefix: str) -> StoredModel | None:
    """The fine-tuned model whose merged weights the artifact applies to (its lineage)."""
    key = f"{artifact_prefix}/{LINEAGE}"
    if not storage.exists(key):
        return None
    return StoredModel(**json.loads(b"".join(storage.iter_bytes(key)))["parent"])


def portable_adapter_config(
    raw: bytes, settings: Settings, model: StoredModel, parent: StoredModel | None
) -> bytes:
    """adapter_config.json naming its base by hub id (and `revision`) or registry name: what
    peft's `AutoPeftModel*.from_pretrained` loads; a merged-start artifact names its parent."""
    config = json.loads(raw)
    ref = base_reference(settings, model.base_model)
    config["base_model_name_or_path"] = parent.id if parent else ref.get("hub_id") or ref["name"]
    if ref.get("revision") and parent is None:
        config["revision"] = ref["revision"]
    return json.dumps(config, indent=2).encode()


def needs_its_base(settings: Settings, model: StoredModel, parent: StoredModel | None) -> bool:
    """Whether an adapter loads as downloaded only with its base beside it: the base is on no
    model hub (builtin, or a path on this server) and the adapter applies to it directly."""
    return parent is None and base_source(settings, model.base_model).source != "hub"


def adapter_readme(settings: Settings, model: StoredModel, parent: StoredModel | None) -> str:
    """The README of a downloaded adapter that comes without its base: where the base named
    in adapter_config.json comes from, and how to load the two together."""
    ref = base_reference(settings, model.base_model)
    head = f"# {model.id}\n\nA LoRA-family adapter trained by Lathe on {model.base_model}.\n\n"
    if parent is not None:
        return head + (
            f"It applies to the merged weights of {parent.id}, not to {model.base_model}: "
            f"download those with `GET /v1/models/{parent.id}/content?format=merged`, unzip "
            "them, and load this adapter onto them:\n"
            '`PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("<merged folder>"),'
            ' "<this folder>")`.\n'
        )
    if ref.get("hub_id"):
        return head + (
            f"`adapter_config.json` names its base by hub id, {ref['hub_id']} at revision "
            f"{ref['revision']}: peft fetches it from the hub (offline, from your Hugging Face "
            f"cache).\n\n{_LOAD}\n{_OWN_BASE}{_bundle_hint(model, ref)}"
        )
    where = (
        f"This server hands {model.base_model}'s weights out at `GET {ref['download']}`."
        if ref["download"]
        else f"This server does not hand out {model.base_model}'s weights (its licence)."
    )
    return head + (
        f"{where} `adapter_config.json` names the base `{model.base_model}`, a folder that "
        "transformers resolves against the working directory: put the base's files there, or "
        f"load it yourself.\n\n{_OWN_BASE}"
    )


def _bundle_hint(model: StoredModel, ref: dict[str, Any]) -> str:
    if not ref["download"]:
        return ""
    return (
        "\nThis server hands the base out too: "
        f"`GET /v1/models/{model.id}/content?format=bundle` includes it, to load offline.\n"
    )


def portable_manifest(
    raw: bytes, settings: Settings, model: StoredModel, parent: StoredModel | None
) -> bytes:
    """lathe_adapter.json with a `base` block: the base's name, source, hub id, revision,
    licence and where this server hands it out (peft warns on unknown keys in its own config,
    so the block lives in Lathe's manifest)."""
    manifest = json.loads(raw)
    ref = base_reference(settings, model.base_model)
    if parent is not None:  # the artifact applies to the parent's merged weights
        ref["applies_to"] = {
            "model": parent.id,
            "download": f"/v1/models/{parent.id}/content?format=merged",
        }
    manifest["base"] = ref
    return json.dumps(manifest, indent=2).encode()
