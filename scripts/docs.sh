#!/usr/bin/env bash
# Serve the docs site (mkdocs-material) at http://127.0.0.1:8008 with live reload; arguments go
# to `mkdocs serve` (e.g. `--dev-addr 0.0.0.0:8008`). Installs the test extra (which pins
# mkdocs-material) into .venv the first time. The API and configuration references are
# generated from the code at build time (scripts/mkdocs_hooks.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test 2> >(grep -v "^WARNING: Location" >&2)
exec .venv/bin/mkdocs serve --dev-addr 127.0.0.1:8008 "$@"
