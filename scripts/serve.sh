#!/usr/bin/env bash
# Install (the first time), then run Lathe on its embedded default: SQLite, a local object
# store, a worker and the inference service alongside. The install says what it installs and
# roughly how long it takes (minutes the first time: torch is a large download; later starts
# skip it). Logs go to .lathe/lathe.log (LATHE_LOG_FILE; `-`: the terminal); the banner with the
# URL and the API key is printed last, once the API, the worker and the inference service
# answer. Arguments go to `lathe serve` (--host, --port, --no-worker).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh 2> >(grep -v "^WARNING: Location" >&2)
echo "Starting Lathe: the API, a training worker and the inference service (about a minute)..."
exec .venv/bin/lathe serve "$@"
