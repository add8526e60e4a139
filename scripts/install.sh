#!/usr/bin/env bash
# Create .venv and install Lathe into it (idempotent). Extras as arguments, e.g. `test`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned: an unpinned resolve would pull a multi-GB CUDA build where a CPU one will do.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
extras="${1:-}"
.venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
