# Sourced by the other scripts: make ./.venv (or $VENV) and install the project pinned by
# constraints.txt. $1: the pip extras to install ("" or "[dev]").
set -euo pipefail
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "key-rotator needs Python 3.11 or newer as '$PYTHON' (set PYTHON=... to choose one)" >&2
    exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c constraints.txt -e ".$1"
