#!/usr/bin/env bash
# Set up (idempotent, quick when done) and run phenomon.
#   ./phenomon.sh            set up, then open the live monitor (on an empty ./runs it starts the grokking demo)
#   ./phenomon.sh demo       set up, then the headless demo (progress lines, no full-screen app)
#   ./phenomon.sh test       set up, then run the test suite (what CI runs)
#   ./phenomon.sh slow       set up, then run the slow full reproductions
#   ./phenomon.sh -- ARGS    set up, then `phenomon ARGS`
set -euo pipefail
cd "$(dirname "$0")"
VENV="${PHENOMON_VENV:-.venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "phenomon: creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
# the tests also install the ray extra (the Ray engine's tests then run); the monitor and the demo need only dev
case "${1:-}" in test|slow) extras="dev,ray" ;; *) extras="dev" ;; esac
stamp="$VENV/.phenomon-setup-${extras/,/-}-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    # the pinned CPU wheel; a bare `torch` requirement would pull a multi-GB CUDA build
    "$VENV/bin/python" -m pip install -q torch==2.13.0
  fi
  "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[$extras]"
  rm -f "$VENV"/.phenomon-setup-"${extras/,/-}"-*
  touch "$stamp"
fi

cmd="${1:-monitor}"
case "$cmd" in
  test) shift; exec "$VENV/bin/python" -m pytest -q "$@" ;;
  slow) shift; exec "$VENV/bin/python" -m pytest -q -m slow "$@" ;;
  monitor) exec "$VENV/bin/phenomon" tui --demo ;;
  demo) shift; exec "$VENV/bin/phenomon" demo "$@" ;;
  --) shift; exec "$VENV/bin/phenomon" "$@" ;;
  *) exec "$VENV/bin/phenomon" "$@" ;;
esac
