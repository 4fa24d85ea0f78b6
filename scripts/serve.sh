#!/usr/bin/env bash
# Start Twinning with the embedded default: SQLite file ./twinning.db, jobs in-process, demo data seeded on the
# first start. Creates .venv and installs the package the first time. Idempotent. Arguments go to `twinning serve`
# (e.g. scripts/serve.sh --port 8080 --host 0.0.0.0).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# installed: the last install finished (.venv/.installed) after the last change to pyproject.toml, and the package
# and every dependency it requires are installed (looked up in the metadata, not imported: importing them all took
# seconds of the first start)
installed() {
  [ -f .venv/.installed ] && [ ! pyproject.toml -nt .venv/.installed ] && [ -x .venv/bin/twinning ] &&
    .venv/bin/python - >/dev/null 2>&1 <<'PY'
import importlib.metadata as md
import re

for requirement in md.requires("twinning") or []:
    if "extra ==" not in requirement:
        md.distribution(re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0])  # PackageNotFoundError: not installed
PY
}
if ! installed; then
  echo "==> installing Twinning into .venv (first run only)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true  # an old pip still works
  if ! .venv/bin/python -m pip install -q -e . >.venv/install.log 2>&1; then
    cat .venv/install.log >&2
    echo "pip install -e . failed (log above)" >&2
    exit 1
  fi
  touch .venv/.installed
fi
exec .venv/bin/twinning serve "$@"
