"""Where the client commands send requests, and with which key.

In order: `LATHE_BASE_URL` / `LATHE_API_KEY` (core.settings), then the chosen profile of the
profile file (`lathe login` writes it), then the embedded default a local `lathe serve` prints
(`http://127.0.0.1:8000` and the key it keeps in `<LATHE_DATA_DIR>/api_key`), so that right
after `./scripts/serve.sh` the commands work with no set-up at all.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from core.settings import get_settings

DEFAULT_PROFILE = "default"


class UsageError(Exception):
    """A command that cannot run as given (a missing file, a bad flag value, no such profile)."""


@dataclass(frozen=True)
class Target:
    base_url: str  # without the /v1 suffix
    api_key: str | None
    source: str  # where the values came from, for `lathe login` and error messages


def profile_path() -> Path:
    """`$XDG_CONFIG_HOME/lathe/config.toml`, `~/.config/lathe/config.toml` by default."""
    root = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(root) / "lathe" / "config.toml"


def read_profiles(path: Path | None = None) -> dict[str, dict[str, str]]:
    path = path or profile_path()
    if not path.exists():
        return {}
    with path.open("rb") as f:
        return {k: v for k, v in tomllib.load(f).items() if isinstance(v, dict)}


def write_profile(name: str, base_url: str, api_key: str, path: Path | None = None) -> Path:
    """Add or replace one profile; the file holds keys, so it is private to the user (0600)."""
    path = path or profile_path()
    profiles = read_profiles(path)
    profiles[name] = {"base_url": base_url, "api_key": api_key}
    path.parent.mkdir(parents=True, exist_ok=True)
    # TOML basic strings accept JSON string escapes, so json.dumps quotes them safely.
    text = "".join(
        f"[{json.dumps(n)}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in p.items()) + "\n"
        for n, p in profiles.items()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)
    return path


def _embedded_key() -> str | None:
    path = get_settings().data_dir / "api_key"
    return path.read_text().strip() if path.exists() else None


def resolve(profile: str | None = None) -> Target:
    """The server and key to use; a named profile that does not exist is an error."""
    settings = get_settings()
    profiles = read_profiles()
    if profile is not None and profile not in profiles:
        raise UsageError(f"no profile {profile!r} in {profile_path()} (create it: lathe login)")
    chosen = profiles.get(profile or DEFAULT_PROFILE, {})
    source = f"profile {profile or DEFAULT_PROFILE}" if chosen else "embedded default"
    base_url = settings.client.base_url or chosen.get("base_url")
    api_key = settings.client.api_key or chosen.get("api_key")
    if settings.client.base_url or settings.client.api_key:
        source = "environment"
    if base_url is None:
        base_url = f"http://{settings.server.host}:{settings.server.port}"
    if api_key is None and not chosen:
        api_key = _embedded_key()
    return Target(base_url.rstrip("/").removesuffix("/v1"), api_key, source)
