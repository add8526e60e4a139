"""scripts/install.sh installs only when something it depends on changed (a stamp in .venv)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" = "-V" ]; then echo "Python 3.11.7"; exit 0; fi
echo "$*" >> "$(dirname "$0")/../../pip.log"
"""


def _checkout(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "install.sh", tmp_path / "scripts" / "install.sh")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return tmp_path


def _install(repo: Path, *extras: str, **env: str) -> int:
    """Runs the real script against a stand-in python; returns how many pip runs it made."""
    before = _pip_runs(repo)
    subprocess.run(["bash", "scripts/install.sh", *extras], cwd=repo, check=True, env=env or None,
                   timeout=30)  # fmt: skip
    return _pip_runs(repo) - before


def _pip_runs(repo: Path) -> int:
    log = repo / "pip.log"
    return log.read_text().count("-e .") if log.exists() else 0


def test_install_is_skipped_until_pyproject_changes(tmp_path):
    repo = _checkout(tmp_path)
    assert _install(repo) == 1
    assert _install(repo) == 0  # nothing changed: no pip at all
    assert _install(repo, "test") == 1  # other extras: their own stamp
    assert _install(repo, "test") == 0
    with (repo / "pyproject.toml").open("a") as f:
        f.write("\n# a new dependency\n")
    assert _install(repo) == 1
    assert _install(repo, **{**os.environ, "FORCE_INSTALL": "1"}) == 1
