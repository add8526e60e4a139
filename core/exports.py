"""Weight download: a stored model's artifact, or its merged weights, as a streamed zip.

A client that trained with Lathe owns its weights and may run them elsewhere: the artifact as
stored (a peft adapter plus tokenizer and manifest, or a full model directory), or the adapter
folded into its base weights — a standalone Hugging Face model directory that needs no peft.

The zip is written as it is read from storage (one chunk at a time, data descriptors instead
of seeking back), so a multi-gigabyte model never sits in memory. Merging is slow and needs the
base weights in memory, so its result is cached in storage next to the artifact
(`.../artifact` → `.../merged`, `.../step-N/adapter` → `.../step-N/merged`): a second download
streams the cached files. Nothing here imports torch until a merge actually runs.
"""

from __future__ import annotations

import re
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from core.errors import InvalidRequest
from core.model_store import ModelStore, StoredModel
from core.portable import (
    ADAPTER_CONFIG,
    MANIFEST,
    README,
    adapter_readme,
    check_downloadable,
    parent_of,
    portable_adapter_config,
    portable_manifest,
)
from core.registry import base_model_path
from core.settings import Settings
from core.storage import Storage
from core.storage.base import CHUNK
from core.tempdirs import temp_root

# Weights do not deflate; storing them saves CPU for nothing lost. Text files deflate well.
_STORED_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def merged_prefix(artifact_key: str) -> str:
    """Where the merged export of the artifact at `artifact_key` is cached: its sibling."""
    parent, _, _ = artifact_key.rstrip("/").rpartition("/")
    return f"{parent}/merged" if parent else "merged"


def download_name(model_id: str, merged: bool = False) -> str:
    """A file name any client can save: the model id with ':' and other odd characters
    replaced."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("._") or "model"
    return f"{safe}-merged.zip" if merged else f"{safe}.zip"


def model_zip(
    settings: Settings, storage: Storage, model: StoredModel, merged: bool = False
) -> Iterator[bytes]:
    """What `GET /v1/models/{model}/content` streams: a base model's own files (where it may
    be handed out; already standalone, so `merged` changes nothing), else the artifact as
    stored or merged. Checks run now, so a refusal is an error response, not a broken zip."""
    if model.artifact_key is None:
        return base_zip(settings, model.id)
    if merged:
        return merged_zip(settings, storage, model)
    return artifact_zip(settings, storage, model)


def exportable(model: StoredModel) -> StoredModel:
    """The model itself, if it has stored weights (an artifact) to download."""
    if model.artifact_key is None:
        raise InvalidRequest(
            f"{model.id} is a base model: it has no adapter or merged weights of its own",
            param="model",
        )
    return model


def artifact_zip(settings: Settings, storage: Storage, model: StoredModel) -> Iterator[bytes]:
    """The stored artifact as zip bytes; adapter_config.json names its base by hub id or
    registry name rather than by a path on this server, the manifest says where to get it,
    and an adapter's README how to load it with its base (in place of peft's empty card)."""
    prefix = exportable(model).artifact_key.rstrip("/")  # type: ignore[union-attr]
    keys = stored_keys(storage, prefix, model.id)
    parent = parent_of(storage, prefix)
    rewrite = {
        ADAPTER_CONFIG: lambda raw: portable_adapter_config(raw, settings, model, parent),
        MANIFEST: lambda raw: portable_manifest(raw, settings, model, parent),
    }
    if f"{prefix}/{ADAPTER_CONFIG}" not in keys:  # a whole model: standalone as stored
        return zip_prefix(storage, prefix, keys, rewrite)
    readme = adapter_readme(settings, model, parent).encode()
    keys = [k for k in keys if k != f"{prefix}/{README}"]
    return zip_prefix(storage, prefix, keys, rewrite, extra={README: readme})


def base_zip(settings: Settings, name: str) -> Iterator[bytes]:
    """A base model's directory (built or fetched on first use) as zip bytes."""
    check_downloadable(settings, name)
    root = base_model_path(settings, name)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    return zip_entries((p.relative_to(root).as_posix(), file_chunks(p)) for p in files)


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def merged_zip(settings: Settings, storage: Storage, model: StoredModel) -> Iterator[bytes]:
    """The model's adapter folded into the weights it applies to, as a zip of a standalone
    model directory; merged once, then served from the storage cache.

    Blocks while merging: call it off the event loop. A full model is already standalone and
    comes back as stored. Soft prompts cannot be folded into weights: InvalidRequest."""
    prefix = exportable(model).artifact_key.rstrip("/")  # type: ignore[union-attr]
    keys = stored_keys(storage, prefix, model.id)
    if not any(k.endswith("/adapter_config.json") for k in keys):  # a full model
        return zip_prefix(storage, prefix, keys)
    cached = merged_prefix(prefix)
    if not storage.exists(f"{cached}/{MANIFEST}"):
        _merge_into_storage(settings, storage, model, cached)
    return zip_prefix(storage, cached, storage.list_keys(cached))


def _merge_into_storage(
    settings: Settings, storage: Storage, model: StoredModel, dest: str
) -> None:
    from core.adapters import AdapterUnsupported, merge_and_save

    store = ModelStore(settings, storage)  # resolves lineage: a merged-start parent's weights
    with tempfile.TemporaryDirectory(prefix="lathe-merge-", dir=_scratch(settings)) as tmp:
        out = Path(tmp) / "merged"
        try:
            merge_and_save(store.base_dir(model), store.artifact_dir(model), out)
        except AdapterUnsupported as exc:
            raise InvalidRequest(f"{model.id}: {exc}", param="format") from exc
        # The manifest goes last: its presence is what marks the cached copy complete, so a
        # concurrent download never streams half a merge.
        files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST)
        for path in [*files, out / MANIFEST]:
            storage.put_file(f"{dest}/{path.relative_to(out).as_posix()}", path)


def _scratch(settings: Settings) -> Path:
    return temp_root(settings)


def stored_keys(storage: Storage, prefix: str, model_id: str) -> list[str]:
    keys = storage.list_keys(prefix)
    if not keys:
        raise FileNotFoundError(f"the stored files of {model_id} are gone ({prefix})")
    return keys


class _Pipe:
    """A write-only sink zipfile writes into and the generator drains after each write."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        out, self.chunks = b"".join(self.chunks), []
        return out


def zip_entries(entries: Iterable[tuple[str, Iterable[bytes]]]) -> Iterator[bytes]:
    """Zip bytes of (name, chunks) entries, produced while the chunks are read (memory: one
    chunk at a time)."""
    pipe = _Pipe()
    stamp = time.localtime()[:6]
    with zipfile.ZipFile(pipe, "w") as archive:  # type: ignore[arg-type]
        for name, chunks in entries:
            info = zipfile.ZipInfo(name, date_time=stamp)
            weights = name.endswith(_STORED_SUFFIXES)
            info.compress_type = zipfile.ZIP_STORED if weights else zipfile.ZIP_DEFLATED
            # Sizes are unknown until the end; zip64 headers allow entries over 4 GiB.
            with archive.open(info, "w", force_zip64=True) as entry:
                for chunk in chunks:
                    entry.write(chunk)
                    if data := pipe.drain():
                        yield data
            if data := pipe.drain():
                yield data
    if data := pipe.drain():  # the central directory, written on close
        yield data


def zip_prefix(
    storage: Storage,
    prefix: str,
    keys: list[str],
    rewrite: dict[str, Callable[[bytes], bytes]] | None = None,
    extra: dict[str, bytes] | None = None,
) -> Iterator[bytes]:
    """The objects `keys` under `prefix/`, named by their path below it; a (small) file named
    in `rewrite` is read whole and replaced by what its function returns; `extra` files
    follow them."""
    rewrite = rewrite or {}

    def entries() -> Iterator[tuple[str, Iterable[bytes]]]:
        for key in keys:
            name = key[len(prefix) + 1 :]
            chunks: Iterable[bytes] = storage.iter_bytes(key)
            if name in rewrite:
                chunks = [rewrite[name](b"".join(chunks))]
            yield name, chunks
        for name, data in (extra or {}).items():
            yield name, [data]

    return zip_entries(entries())


def remove_cached(storage: Storage, artifact_key: str) -> None:
    """Delete the merged copy cached for an artifact (with the model that owns it)."""
    storage.delete_prefix(merged_prefix(artifact_key))
