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
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned: an unpinned resolve would pull a multi-GB CUDA build where a CPU one will do.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
echo "$key" > "$stamp"
