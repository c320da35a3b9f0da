#!/usr/bin/env bash
# A GPU check in one command (issue 24), within 10 minutes: the device and versions, a smoke loop on CUDA, the
# benchmark table with utilisation (paper 28x28, paper 32x32, gpu 28x28, CPU_28), then as many cells of the
# gpu-preset Fashion-MNIST matrix as fit, exported as a tarball in the results/ layout.
#   tools/gpu_check.sh OUTDIR                 on a machine with CUDA, the package installed, Fashion-MNIST present
#   tools/gpu_check.sh OUTDIR --cpu-dry-run   the same steps on the CPU at smoke sizes (digits cells)
# OUTDIR receives at most 8 files: summary.txt, env.txt, smoke.log, bench.csv, matrix.log, export.log, cells.tar.gz.
# Resuming on a fresh machine: extract the previous cells.tar.gz at the repository root first; cells in
# results/fashion_mnist/gpu/ are then not re-run. Needs the `preset=gpu` LoopConfig wiring for the matrix step.
set -u
OUT=${1:-}
MODE=${2:-}
if [ -z "$OUT" ] || { [ -n "$MODE" ] && [ "$MODE" != --cpu-dry-run ]; }; then
  echo "usage: $0 OUTDIR [--cpu-dry-run]" >&2
  exit 2
fi
if ! { mkdir -p "$OUT" && touch "$OUT/.gpu_check_probe" && rm -f "$OUT/.gpu_check_probe"; } 2>/dev/null; then
  echo "gpu_check: OUTDIR '$OUT' is not writable" >&2
  exit 2
fi
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
RUN=$(dirname "$PY")/scollapse-run
START=$SECONDS
TOTAL_S=${GPU_CHECK_SECONDS:-570}          # the whole check, under 10 minutes; each step's timeout scales with it
scaled() { echo $(( $1 * TOTAL_S / 570 )); }
export PYTHONUNBUFFERED=1                  # a step killed by its timeout still leaves its lines in the logs
WORK=${GPU_CHECK_WORK:-$(mktemp -d)}       # runs and caches (not copied to OUTDIR)
if [ "$MODE" = --cpu-dry-run ]; then
  DRY=dry; DEVICE=cpu; RESULTS=$WORK/results
else
  DRY=real; DEVICE=cuda; RESULTS=${GPU_CHECK_RESULTS:-results/fashion_mnist/gpu}
fi
FAILED=0

step() {  # step NAME SECONDS LOG COMMAND...: run under its own timeout, output to LOG and summary.txt
  local name=$1 limit=$2 log=$3; shift 3
  local t0=$SECONDS
  echo "== $name (timeout ${limit}s)" | tee -a "$OUT/summary.txt"
  timeout "$limit" "$@" > >(tee -a "$OUT/$log" >> "$OUT/summary.txt") 2>&1
  local rc=$?
  echo "== $name: exit $rc in $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
  if [ "$name" = matrix ] && [ $rc -eq 124 ]; then   # as many cells as fit: the finished ones are exported next
    echo "== matrix: time limit reached; the cells finished so far are exported" | tee -a "$OUT/summary.txt"
  elif [ $rc -ne 0 ]; then
    FAILED=1
  fi
}
left() { echo $((TOTAL_S - (SECONDS - START))); }

: > "$OUT/summary.txt"
echo "gpu_check $MODE: $(date -u '+%Y-%m-%d %H:%M UTC'), work folder $WORK" | tee -a "$OUT/summary.txt"
step env "$(scaled 60)" env.txt "$PY" tools/gpu_check.py env
step smoke "$(scaled 150)" smoke.log "$RUN" preset=smoke device=$DEVICE generations=1 out_dir="$WORK/smoke" \
  cache_dir="$WORK/runs/_cache" progress=false   # the matrix's cache: its judge is trained once
step bench "$(scaled 200)" bench.log "$PY" tools/gpu_check.py bench "$OUT/bench.csv" $DRY
MATRIX_S=$(( $(left) - $(scaled 45) ))
[ "$MATRIX_S" -ge 10 ] || MATRIX_S=10   # at least a try: a resumed matrix may have nothing left to run
step matrix "$MATRIX_S" matrix.log "$PY" tools/gpu_check.py matrix "$WORK" "$RESULTS" $DRY
step export "$(scaled 40)" export.log "$PY" tools/gpu_check.py export "$WORK" "$RESULTS" "$OUT/cells.tar.gz" $DRY
rm -f "$OUT/bench.log"   # its table is bench.csv and summary.txt
echo "gpu_check: done in $((SECONDS - START)) s, files in $OUT" | tee -a "$OUT/summary.txt"
exit $FAILED
