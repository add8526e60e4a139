#!/usr/bin/env bash
# Install with test extras, lint, then run the whole suite (needs Postgres and Redis on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test 2> >(grep -v "^WARNING: Location" >&2)
# vLLM in its own venv for tests/inference (a no-op once installed). Where it cannot be installed
# its tests skip, saying so; not in CI, where nothing but a missing GPU may skip.
if ! scripts/install_vllm.sh 2> >(grep -v "^WARNING: Location" >&2); then
  [ "${CI:-}" = true ] && { echo "vLLM could not be installed" >&2; exit 1; }
  echo "vLLM could not be installed: its tests will skip" >&2
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
