# Sourced by the other scripts: make ./.venv (or $VENV) and install the project pinned by
# constraints.txt. $1: the pip extras to install ("" or "[dev]").
#
# The install is skipped when nothing it depends on changed since the last one (the project is
# installed editable, so a change to the code needs no reinstall): a stamp in the venv records
# a hash of pyproject.toml, constraints.txt, the extras and the interpreter. `./scripts/demo.sh`
# then starts in about a second instead of six.
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
stamp="$VENV/.key-rotator-install"
wanted=$(
    { cat pyproject.toml constraints.txt; echo "extras=$1"; "$VENV/bin/python" -VV; } \
        | "$PYTHON" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -c constraints.txt -e ".$1"
    echo "$wanted" > "$stamp"
fi
