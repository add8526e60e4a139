#!/usr/bin/env bash
# Install, then run Lathe on its embedded default: SQLite, local object store, a worker alongside.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh 2> >(grep -v "^WARNING: Location" >&2)
exec .venv/bin/lathe serve "$@"
