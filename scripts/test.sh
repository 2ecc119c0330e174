#!/usr/bin/env bash
# Set everything up in ./.venv and run every gate and test: lint, types, layers, pytest with
# branch coverage. As root (CI) it also installs the system packages some tests need; elsewhere
# those tests skip and name what to install. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh "[dev,kubernetes]"

# System packages: Debian's Pushgateway (a real one for CronJob-mode metrics) and Prometheus
# (promtool, to check and unit-test the alert rules; the server itself, which the dashboard's
# test starts to scrape a real `rotator serve`).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    missing=()
    command -v prometheus-pushgateway >/dev/null 2>&1 || missing+=(prometheus-pushgateway)
    { command -v promtool && command -v prometheus; } >/dev/null 2>&1 || missing+=(prometheus)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]} (Debian packages)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
fi

echo "== ruff";          "$VENV/bin/ruff" check .
echo "== ruff format";   "$VENV/bin/ruff" format --check .
echo "== mypy --strict"; "$VENV/bin/mypy"
echo "== import-linter"; "$VENV/bin/lint-imports"
echo "== pytest"
# pytest's exit code 5 (no tests collected) fails this script like any other failure.
exec "$VENV/bin/python" -m pytest --cov --cov-report=term-missing:skip-covered "$@"
