"""Base models' tokenizer files, served read-only in the Hugging Face hub's URL layout so a
client anywhere can `AutoTokenizer.from_pretrained(...)` with `HF_ENDPOINT=<lathe>/hf` and no
hub (the tinker SDK's `get_tokenizer()` and the cookbook's `get_tokenizer` both do that).

Only tokenizer and config files are served, never weights, and only of configured base
models whose files are already on this host (the API never builds nor downloads a model).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from core.errors import NotFound
from core.settings import Settings

FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "chat_template.jinja",
    "config.json",
    "generation_config.json",
)
NAMESPACE = "lathe"


def tokenizer_id(base_model: str) -> str:
    """The hub-style repo id a client asks for: `lathe/<base>`, or the base's own name when
    it already is `org/name` (so recipes that look tokenizers up by model name find it)."""
    return base_model if base_model.count("/") == 1 else f"{NAMESPACE}/{base_model}"


ALIASES = {"thinkingmachineslabinc/meta-llama-3-instruct-tokenizer": "meta-llama/Llama-3"}
"""Tokenizer repos that clients ask for in place of a base's own: the tinker-cookbook's
`get_tokenizer` (and the SDK's fallback) load every `meta-llama/Llama-3*` tokenizer from
this one ungated repo. Served from the first configured base whose name starts so."""


def base_of(settings: Settings, repo_id: str) -> str:
    if repo_id in settings.base_models:
        return repo_id
    if prefix := ALIASES.get(repo_id):
        for name in settings.base_models:
            if name.startswith(prefix):
                return name
    ns, _, name = repo_id.partition("/")
    if ns == NAMESPACE and name in settings.base_models:
        return name
    raise NotFound(f"no base model's tokenizer at {repo_id!r}", param="repo_id")


def local_dir(settings: Settings, base: str) -> Path:
    source = settings.base_models[base]
    if source.source == "path":
        return Path(source.path or "")
    if source.source == "builtin":
        return settings.resolved_model_cache_dir / base
    from huggingface_hub import snapshot_download

    try:
        return Path(
            snapshot_download(
                source.hub_id or base,
                revision=source.revision,
                cache_dir=str(settings.resolved_model_cache_dir / "hub"),
                local_files_only=True,
            )
        )
    except Exception as exc:
        raise NotFound(f"{base} is not on this host yet", param="repo_id") from exc


def files(settings: Settings, repo_id: str) -> dict[str, Path]:
    root = local_dir(settings, base_of(settings, repo_id))
    found = {name: root / name for name in FILES if (root / name).is_file()}
    if "tokenizer_config.json" not in found and "tokenizer.json" not in found:
        raise NotFound(f"{repo_id}'s tokenizer is not on this host yet", param="repo_id")
    return found


def commit(repo_id: str, found: dict[str, Path]) -> str:
    """A stable 40-hex "commit" that changes when any served file changes."""
    h = hashlib.sha1(repo_id.encode())
    for name in sorted(found):
        h.update(name.encode())
        h.update(str(found[name].stat().st_mtime_ns).encode())
    return h.hexdigest()


def etag(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
