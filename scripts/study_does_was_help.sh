#!/usr/bin/env bash
# Issue 15's study, resumable: runs the grid of an experiment file with
# `was experiment` (finished cells are skipped, interrupted ones resume from
# their checkpoints) and, as each cell finishes, copies its results (JSON and
# metrics, never checkpoints) to docs/results/NAME/cells/ and commits them, so
# that nothing finished is lost if the machine goes away. `was report
# docs/results/NAME` reads those copies as it reads the grid.
#
#   scripts/study_does_was_help.sh CONFIG CIFAR10_DIR [BUDGET=cpu] [OUT=runs/NAME-BUDGET]
#   WAS=build/was the binary; THREADS=2; COMMIT=0 copies without committing.
set -euo pipefail
CONFIG=${1:?usage: scripts/study_does_was_help.sh CONFIG CIFAR10_DIR [BUDGET] [OUT]}
DATA=${2:?usage: scripts/study_does_was_help.sh CONFIG CIFAR10_DIR [BUDGET] [OUT]}
BUDGET=${3:-cpu}
NAME=$(basename "$CONFIG" .json)
OUT=${4:-runs/$NAME-$BUDGET}
WAS=${WAS:-build/was}
THREADS=${THREADS:-2}
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

"$WAS" experiment "$CONFIG" --budget "$BUDGET" --data-dir cifar10="$DATA" --out "$OUT" --threads "$THREADS" \
  > "$OUT/experiment.log" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  sleep 60
  collect
done
wait "$pid"
collect
cp "$OUT/summary.json" "$DEST/../summary.json" 2>/dev/null || true
