#!/usr/bin/env bash
# The test command: installs what the tests need, starts PostgreSQL and Redis if they are down, runs the checks
# and the test suite. Idempotent; safe to run again. Extra arguments go to pytest (e.g. scripts/test.sh -k api).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

PY=${PYTHON:-python3}
APT_UPDATED=0
apt_install() {  # apt_install PKG... : Debian packages, only when missing
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

say "Python environment (.venv)"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || say "(could not upgrade pip; going on with $(.venv/bin/pip --version | cut -d' ' -f2))"
# The project's own install must succeed: its output is shown and the script stops when it fails.
if ! .venv/bin/python -m pip install -q -e ".[test]" >.venv/install.log 2>&1; then
  cat .venv/install.log >&2
  echo "pip install -e .[test] failed (log above)" >&2
  exit 1
fi
touch .venv/.installed

say "Chromium for the browser tests (tests/e2e: playwright drives /usr/bin/chromium; never 'playwright install')"
apt_install chromium chromium-driver
say "wrk for the HTTP benchmark's test (twinning bench api)"
apt_install wrk

say "PostgreSQL and Redis"
command -v pg_ctlcluster >/dev/null || apt_install postgresql
command -v redis-server >/dev/null || apt_install redis-server
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ""
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping

say "docker-compose.yml"
command -v docker-compose >/dev/null || apt_install docker-compose
SECRET_KEY=only-for-validation docker-compose -f docker-compose.yml config -q && echo "docker-compose.yml is valid"

say "ruff and mypy"
.venv/bin/ruff check .
.venv/bin/ruff format --check . >/dev/null || { .venv/bin/ruff format --diff . | head -50; exit 1; }
.venv/bin/mypy

say "pytest"
mkdir -p test-output
exec .venv/bin/python -m pytest "$@"
