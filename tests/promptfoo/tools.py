"""promptfoo for tests/api/test_promptfoo.py, pinned in `package.json` / `package-lock.json`
and installed with `npm ci` into the gitignored `tests/promptfoo/node_modules` when the lock
changed (the way tests/sdk pins its generators)."""

from __future__ import annotations

from pathlib import Path

from tests.sdk.tools import _digest, _installed, _run

HERE = Path(__file__).parent


def promptfoo_bin() -> Path:
    lock = (HERE / "package-lock.json").read_bytes()
    modules = HERE / "node_modules"
    _installed(
        modules / ".lathe-stamp",
        _digest(lock),
        lambda: _run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], HERE),
    )
    return modules / ".bin" / "promptfoo"
