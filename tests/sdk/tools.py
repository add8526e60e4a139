"""The SDK generators of tests/api/test_sdk.py, pinned here and cached in gitignored folders.

- npm: `package.json` / `package-lock.json` (@hey-api/openapi-ts, typescript, @types/node),
  installed with `npm ci` into `tests/sdk/node_modules` when the lock changed.
- Python: `requirements.txt` (openapi-python-client), installed `--no-deps` into
  `.cache/python` when it changed; that folder is on the generator's PYTHONPATH only.
- A generated (and, for TypeScript, compiled) SDK is kept under `.cache/` keyed by the hash of
  the spec and of everything that shapes it, so a rerun against an unchanged API is instant.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
CACHE = HERE / ".cache"
PYTHON_CONFIG = (
    "post_hooks: []\ncontent_type_overrides:\n  application/zip: application/octet-stream\n"
)
"""openapi-python-client has no zip response type: read it as bytes, as octet-stream is."""


def _digest(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        output = f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        raise RuntimeError(f"{' '.join(args)} failed:\n{output}")


def _installed(stamp: Path, key: str, install) -> None:
    if stamp.exists() and stamp.read_text() == key:
        return
    install()
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(key)


def node_bin() -> Path:
    lock = (HERE / "package-lock.json").read_bytes()
    modules = HERE / "node_modules"
    _installed(
        modules / ".lathe-stamp",
        _digest(lock),
        lambda: _run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], HERE),
    )
    return modules / ".bin"


def python_generator() -> Path:
    target = CACHE / "python"
    requirements = HERE / "requirements.txt"

    def install() -> None:
        shutil.rmtree(target, ignore_errors=True)
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target)]
        _run([*pip, "-r", str(requirements)], HERE)

    _installed(target / ".lathe-stamp", _digest(requirements.read_bytes()), install)
    return target


def _cached(name: str, key: str, build) -> Path:
    """`build(tmp)` fills a fresh folder, renamed into place once complete."""
    out = CACHE / f"{name}-{key}"
    if not out.exists():
        for stale in CACHE.glob(f"{name}-*"):  # generated from an older spec
            shutil.rmtree(stale, ignore_errors=True)
        tmp = CACHE / f"{name}-{key}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        build(tmp)
        tmp.rename(out)
    return out


def python_sdk(spec: bytes) -> Path:
    """A folder holding the generated package `lathe_client` (put it on sys.path)."""
    generator = python_generator()
    key = _digest(spec, (HERE / "requirements.txt").read_bytes(), PYTHON_CONFIG.encode())

    def build(tmp: Path) -> None:
        (tmp / "openapi.json").write_bytes(spec)
        (tmp / "config.yaml").write_text(PYTHON_CONFIG)
        cli = "from openapi_python_client.cli import app; app()"
        args = ["generate", "--path", "openapi.json", "--output-path", "lathe_client"]
        args += ["--meta", "none", "--config", "config.yaml"]
        env = {**os.environ, "PYTHONPATH": str(generator)}
        _run([sys.executable, "-c", cli, *args], tmp, env)

    return _cached("py", key, build)


def typescript_flow(spec: bytes) -> Path:
    """The generated TypeScript SDK with flow.ts, compiled by tsc: the path of flow.js."""
    tools = node_bin()
    sources = [HERE / n for n in ("package-lock.json", "tsconfig.json", "flow.ts")]
    key = _digest(spec, *(p.read_bytes() for p in sources))

    def build(tmp: Path) -> None:
        (tmp / "openapi.json").write_bytes(spec)
        (tmp / "src").mkdir()
        shutil.copy(HERE / "flow.ts", tmp / "src" / "flow.ts")
        shutil.copy(HERE / "tsconfig.json", tmp / "tsconfig.json")
        generate = [str(tools / "openapi-ts"), "-i", "openapi.json", "-o", "src/client"]
        _run([*generate, "-c", "@hey-api/client-fetch"], tmp)
        _run([str(tools / "tsc"), "-p", "tsconfig.json"], tmp)

    return _cached("ts", key, build) / "dist" / "flow.js"
