#!/usr/bin/env bash
# Install with test extras, lint, then run the test suite (needs Postgres and Redis on 127.0.0.1).
#
#   ./scripts/test.sh [--quick] [PYTEST ARGS...]
#
# What it costs, measured on a quiet 2-core machine from a fresh clone:
#   .venv       Lathe with its test extras (torch 2.13 pinned first): ~4 GB on disk, ~2.5 min
#               the first time (mostly torch's download); skipped afterwards unless
#               pyproject.toml changed.
#   .venv-vllm  vLLM (CPU build) in its own environment, for tests/inference/test_vllm.py:
#               ~3.5 GB on disk (2.9 GB downloaded), ~5.5 min the first time.
#   .venv-cookbook  tinker-cookbook 0.5.8 in its own environment (it pins an older
#               transformers), for tests/tinker/test_cookbook.py: ~1.6 GB on disk (torch 2.13
#               pinned, from pip's cache once .venv has it), ~2 min the first time (measured on
#               a loaded 2-core machine; ~1 min with pip's cache warm).
#   pytest      the whole suite: ~24-26 min (1,098 tests; CI runs all of it).
#
# --quick: a local loop. Installs no vLLM nor tinker-cookbook, starts no vLLM server and skips
# the browser tests (tests/ui), tests/inference/test_vllm.py and tests/tinker/test_cookbook.py;
# everything else runs. CI never uses it.
# Arguments after the mode go to pytest (e.g. `./scripts/test.sh --quick tests/api -x`).
#
# However it ends — passed, failed, Ctrl-C, SIGTERM — every process the suite started (servers,
# workers, inference services, vLLM, browsers) is stopped: pytest runs under scripts/reaped.py,
# a child subreaper that collects them even when they left pytest's session.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=
case "${1:-}" in
  --quick) quick=1; shift ;;
  -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
if [ -n "$quick" ] && [ "${CI:-}" = true ]; then
  echo "--quick is a local loop: CI runs everything" >&2; exit 2
fi
[ -f .venv/.lathe-install-test ] || echo "Installing Lathe and its test extras into .venv (~4 GB, a few minutes the first time)..." >&2
scripts/install.sh test 2> >(grep -v "^WARNING: Location" >&2)
if [ -n "$quick" ]; then
  export LATHE_TEST_QUICK=1  # tests/inference/conftest.py: no vLLM even where it is installed
  set -- --ignore=tests/ui --ignore=tests/inference/test_vllm.py \
    --ignore=tests/tinker/test_cookbook.py "$@"
else
  # vLLM in its own venv for tests/inference (a no-op once installed). Where it cannot be
  # installed its tests skip, saying so; not in CI, where nothing but a missing GPU may skip.
  ls .venv-vllm/.lathe-installed-* >/dev/null 2>&1 ||
    echo "Installing vLLM into .venv-vllm (~3.5 GB, ~5 minutes the first time)..." >&2
  if ! scripts/install_vllm.sh 2> >(grep -v "^WARNING: Location" >&2); then
    [ "${CI:-}" = true ] && { echo "vLLM could not be installed" >&2; exit 1; }
    echo "vLLM could not be installed: its tests will skip" >&2
  fi
  # tinker-cookbook in its own venv for tests/tinker/test_cookbook.py (a no-op once installed)
  ls .venv-cookbook/.lathe-installed-* >/dev/null 2>&1 ||
    echo "Installing tinker-cookbook into .venv-cookbook (~1.6 GB, ~2 minutes the first time)..." >&2
  if ! scripts/install_cookbook.sh 2> >(grep -v "^WARNING: Location" >&2); then
    [ "${CI:-}" = true ] && { echo "tinker-cookbook could not be installed" >&2; exit 1; }
    echo "tinker-cookbook could not be installed: its test will skip" >&2
  fi
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python scripts/reaped.py .venv/bin/python -m pytest "$@"
