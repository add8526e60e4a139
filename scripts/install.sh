#!/usr/bin/env bash
# Create .venv and install Lathe into it (idempotent). Extras as arguments, e.g. `test`.
# Skipped when nothing it depends on changed since the last install (a stamp in .venv keyed on
# pyproject.toml, this script, the extras, the checkout and the Python): the install is
# editable, so code changes need none. FORCE_INSTALL=1 installs anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
extras="${1:-}"
stamp=".venv/.lathe-install${extras:+-$extras}"
key="$( (cat pyproject.toml scripts/install.sh; echo "$extras"; pwd; .venv/bin/python -V) | sha256sum | cut -d' ' -f1)"
if [ -z "${FORCE_INSTALL:-}" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then
  exit 0
fi
say() { echo "install.sh: $*" >&2; }
say "installing Lathe${extras:+ with its [$extras] extras} into .venv (a few minutes the first time; later runs skip this until pyproject.toml changes)"
say "[1/3] pip"
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned: an unpinned resolve would pull a multi-GB CUDA build where a CPU one will do.
say "[2/3] torch==2.13.0 (on Linux x86_64 PyPI's wheel is a CUDA build: ~2.5 GB to download)"
.venv/bin/python -m pip install --quiet "torch==2.13.0"
say "[3/3] Lathe and its dependencies (transformers, peft, trl, FastAPI, Celery, ...)"
.venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
say "done"
echo "$key" > "$stamp"
