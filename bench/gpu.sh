#!/usr/bin/env bash
# GPU figures in one go, on any machine with an NVIDIA GPU (not yet run on one: see README "Speed").
#
#   bash bench/gpu.sh [RUNS_DIR]        # PYTHON=... to pick the interpreter (default .venv/bin/python)
#
# 1. the Nanda grokking preset (`phenomon run grokking --preset nanda --accelerator gpu`): wall time and the step
#    at which it grokked; then Lightning and Lightning + store against the plain loop for that many steps,
#    interleaved (bench/grokking_overhead.py; target <= 1.2x);
# 2. double descent on the GPU: one run against the plain loop at widths 16, 64, 384 (bench/dd_overhead.py), then
#    the default 39-run sweep with several runs sharing the GPU (--parallel), its wall time and its table.
# Without a GPU (or with a CPU-only torch) it says so and exits 0, having measured nothing.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q "GPU"; then
    echo "bench/gpu.sh: no GPU here (no nvidia-smi, or it lists none): nothing measured"
    exit 0
fi
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1; then
    echo "bench/gpu.sh: nvidia-smi lists a GPU but torch sees no CUDA device (torch" \
         "$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo '?')): install a CUDA build of" \
         "torch into this environment and rerun; nothing measured"
    exit 0
fi
ROOT=${1:-$(mktemp -d /tmp/phenomon-gpu.XXXXXX)}
PAR=${PHENOMON_GPU_PARALLEL:-8}  # runs sharing the GPU in the sweep
set -e
echo "== $(nvidia-smi -L | head -1); torch $("$PY" -c 'import torch; print(torch.__version__, torch.version.cuda)')"
echo "== $(nproc) CPU cores, load $(cut -d' ' -f1-3 /proc/loadavg); runs in $ROOT"

echo "== 1. grokking, Nanda preset, on the GPU"
t0=$(date +%s.%N)
"$PY" -m phenomon run grokking --preset nanda --accelerator gpu --runs "$ROOT/grok" | tail -2
t1=$(date +%s.%N)
STEP=$("$PY" - "$ROOT/grok" <<'PY'
import sys
from pathlib import Path
from phenomon import store
r = store.list_runs(Path(sys.argv[1]))[0]
n = r.manifest.get("verdict_numbers") or {}
print(n.get("test_95_step") or n.get("last_step") or 10000)
PY
)
echo "phenomon run, whole process: $(echo "$t1 - $t0" | bc) s; test accuracy >= 95% at step $STEP"
"$PY" bench/grokking_overhead.py --preset nanda --accelerator gpu --steps "$STEP" --rounds 3

echo "== 2. double descent on the GPU: one run vs the plain loop"
"$PY" bench/dd_overhead.py --accelerator gpu --rounds 2
echo "== the default sweep (39 runs), $PAR at a time on one GPU"
t0=$(date +%s.%N)
"$PY" -m phenomon experiment double_descent --variants baseline --accelerator gpu --parallel "$PAR" \
    --runs "$ROOT/dd" > "$ROOT/dd.log" 2>&1 \
    || { tail -5 "$ROOT/dd.log"; exit 1; }
t1=$(date +%s.%N)
echo "sweep wall time: $(echo "$t1 - $t0" | bc) s"
"$PY" bench/double_descent_table.py "$ROOT/dd"
