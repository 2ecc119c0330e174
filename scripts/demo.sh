#!/usr/bin/env bash
# Set everything up in ./.venv and run `rotator demo` (a real pass against the bundled emulator).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh ""
exec "$VENV/bin/rotator" demo
