#!/usr/bin/env bash
# Issue 15's study, resumable: runs the grid of an experiment file with
# `was experiment` (finished cells are skipped, interrupted ones resume from
# their checkpoints) and, as each cell finishes, copies its results (JSON and
# metrics, never checkpoints) to docs/results/NAME/cells/ and commits them, so
# that nothing finished is lost if the machine goes away. `was report
# docs/results/NAME` reads those copies as it reads the grid. On a machine
# whose grid lacks cells that are already committed (a new machine), only the
# cells not committed yet run (`was experiment --only`).
#
#   scripts/study_does_was_help.sh CONFIG CIFAR10_DIR [BUDGET=cpu] [OUT=runs/NAME-BUDGET]
#   WAS=build/was the binary; JOBS=1 processes share the grid (each takes the
#   cells no other holds), THREADS=2/JOBS threads each; COMMIT=0 copies
#   without committing. On a 2-core machine JOBS=2 trains ResNet-20 about
#   1.25x faster in all than one process with 2 threads (its small
#   convolutions scale poorly across threads).
set -euo pipefail
CONFIG=${1:?usage: scripts/study_does_was_help.sh CONFIG CIFAR10_DIR [BUDGET] [OUT]}
DATA=${2:?usage: scripts/study_does_was_help.sh CONFIG CIFAR10_DIR [BUDGET] [OUT]}
BUDGET=${3:-cpu}
NAME=$(basename "$CONFIG" .json)
OUT=${4:-runs/$NAME-$BUDGET}
WAS=${WAS:-build/was}
JOBS=${JOBS:-1}
THREADS=${THREADS:-$(( JOBS >= 2 ? 1 : 2 ))}
COMMIT=${COMMIT:-1}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/docs/results/$NAME/cells"
mkdir -p "$OUT" "$DEST"

collect() {  # copy every finished cell's small files; commit what is new
  local changed=0
  [ -f "$OUT/experiment.json" ] && cp "$OUT/experiment.json" "$DEST/../experiment.json"
  for cell in "$OUT"/cells/*/; do
    [ -f "$cell/eval.json" ] || continue
    local name; name=$(basename "$cell")
    local to="$DEST/$name"
    if [ ! -f "$to/eval.json" ] || ! cmp -s "$cell/eval.json" "$to/eval.json"; then
      mkdir -p "$to"
      cp "$cell/eval.json" "$cell/results.json" "$cell/metrics.jsonl" "$to/"
      changed=1
    fi
  done
  if [ "$changed" = 1 ] && [ "$COMMIT" = 1 ]; then
    ( cd "$ROOT" && flock /tmp/was-git.lock sh -c \
        "git add docs/results/$NAME && git commit -q -m 'Study $NAME ($BUDGET): finished cells' -- docs/results/$NAME" ) || true
  fi
}

# The cells to run: all of them, less those committed but absent from this grid.
ONLY=()
left_out=0
for cell in $("$WAS" experiment "$CONFIG" --budget "$BUDGET" --data-dir cifar10="$DATA" --out "$OUT" --dry-run); do
  if [ -f "$DEST/$cell/eval.json" ] && [ ! -f "$OUT/cells/$cell/eval.json" ]; then
    left_out=$((left_out + 1))
  else
    ONLY+=(--only "$cell")
  fi
done
if [ "$left_out" -gt 0 ]; then
  echo "$left_out cells are committed in $DEST already; running the $(( ${#ONLY[@]} / 2 )) others: ${ONLY[*]//--only/}"
  [ ${#ONLY[@]} -gt 0 ] || { echo "every cell is committed: nothing to run (was report docs/results/$NAME)"; exit 0; }
else
  ONLY=()
fi

run_grid() {  # $1: the log's suffix
  "$WAS" experiment "$CONFIG" --budget "$BUDGET" --data-dir cifar10="$DATA" --out "$OUT" --threads "$THREADS" \
    "${ONLY[@]}" > "$OUT/experiment$1.log" 2>&1
}
pids=()
for job in $(seq 1 "$JOBS"); do
  run_grid "-$job-$$" &  # each driver its own logs: several may share a grid
  pids+=($!)
  sleep 5  # the first takes the first cell before the next looks
done
running() { for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }
while running; do
  sleep 60
  collect
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
[ "$status" = 0 ] || { collect; echo "a grid process failed: see $OUT/experiment-*.log" >&2; exit 1; }
run_grid ""  # every cell done: this pass only writes the summary
collect
cp "$OUT/summary.json" "$DEST/../summary.json" 2>/dev/null || true
