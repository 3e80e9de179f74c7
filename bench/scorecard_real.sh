#!/usr/bin/env bash
# The scorecard on real runs (the figures in the README's "Scoring explanations"): grokking's baseline and its three
# toggles × seeds 0,1,2; the quick double-descent sweep with and without weight decay × seeds 0,1,2; the lottery
# experiment (ticket, reinit, random mask × seeds 0,1,2). Then `phenomon score` as text and JSON, and a report.
#   bash bench/scorecard_real.sh [RUNS_DIR]        (about 20 minutes on 2 quiet cores)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="${1:-bench/out/scorecard-runs}"
PH=".venv/bin/phenomon"
[ -x "$PH" ] || { ./phenomon.sh -- phenomena >/dev/null; }
mkdir -p "$ROOT"
time $PH experiment grokking --seeds 0,1,2 --runs "$ROOT"
time $PH experiment double_descent --preset quick --seeds 0,1,2 --runs "$ROOT"
time $PH experiment lottery_ticket --runs "$ROOT"
$PH score --runs "$ROOT" | tee "$ROOT/score.txt"
$PH score --runs "$ROOT" --json > "$ROOT/score.json"
$PH report --runs "$ROOT" --out "$ROOT-report"
