#!/usr/bin/env bash
# Create .venv-cookbook with tinker-cookbook (its own venv: 0.5.8 pins transformers<=5.5.4,
# older than Lathe's). tests/tinker/test_cookbook.py runs its recipes in it against a live
# Lathe. Idempotent; a fast no-op once installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
COOKBOOK_PIN="tinker-cookbook[math-rl]==0.5.8"  # math-rl: rl_loop grades answers with sympy
marker=".venv-cookbook/.lathe-installed-tinker-cookbook-0.5.8"
[ -f "$marker" ] && exit 0
[ -x .venv-cookbook/bin/python ] || "$PYTHON" -m venv .venv-cookbook
.venv-cookbook/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned: an unpinned resolve would pull a multi-GB CUDA build.
.venv-cookbook/bin/python -m pip install --quiet "torch==2.13.0"
.venv-cookbook/bin/python -m pip install --quiet "$COOKBOOK_PIN"
.venv-cookbook/bin/python -c "import tinker_cookbook.recipes.sl_loop, tinker_cookbook.recipes.rl_loop" >/dev/null
touch "$marker"
