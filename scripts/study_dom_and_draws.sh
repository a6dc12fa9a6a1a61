#!/usr/bin/env bash
# Issue 8, studies (a) and (b) on CIFAR-10 (resumable: finished runs are
# skipped, interrupted ones continue from their checkpoints).
#  (a) DOM seed 0 against the profile `was dom-search --objective macs
#      --max-drop 1` picks from 32 candidates on a 10% validation split; both
#      evaluated once on the test set at the end.
#  (b) --draws 1 for EPOCHS epochs against --draws 2 --combine mean and
#      --combine min for EPOCHS/2 epochs: the same wall-clock budget (each
#      epoch's seconds are in metrics.jsonl, so the curves can also be compared
#      at equal time).
# Study (c) is `was experiment configs/was-settings.json --budget cpu`.
#
#   scripts/study_dom_and_draws.sh CIFAR10_DIR [OUT=runs/issue8] [EPOCHS=10] [SUBSET=0: all]
#   MODEL=small_cnn (default) picks the network; WAS=build/was the binary.
set -euo pipefail
DATA=${1:?usage: scripts/study_dom_and_draws.sh CIFAR10_DIR [OUT] [EPOCHS] [SUBSET]}
OUT=${2:-runs/issue8}
EPOCHS=${3:-10}
SUBSET=${4:-0}
WAS=${WAS:-build/was}
MODEL=${MODEL:-small_cnn}
COMMON=(--model "$MODEL" --dataset cifar10 --data-dir "$DATA" --was CT --bn-batches 20 --no-augment
        --checkpoint-every 100 --no-progress)
[ "$SUBSET" -gt 0 ] && COMMON+=(--train-subset "$SUBSET")

train() {  # train NAME EPOCHS EXTRA...
  local dir="$OUT/$1" epochs=$2; shift 2
  if [ -f "$dir/results.json" ]; then return; fi
  if [ -f "$dir/last.pt" ]; then "$WAS" train --resume "$dir" --no-progress
  else "$WAS" train "${COMMON[@]}" --epochs "$epochs" "$@" --out "$dir"; fi
}

mkdir -p "$OUT"
# (a) the validation split is part of the run; the test set is read once, at the end.
train dom-search "$EPOCHS" --val-fraction 0.1
if [ ! -f "$OUT/dom-search/profile.json" ]; then
  "$WAS" dom-search "$OUT/dom-search" --data-dir "$DATA" --objective macs --max-drop 1 --candidates 32 \
    --plot "$OUT/dom-search" | tee "$OUT/dom-search/search.txt"
  "$WAS" eval "$OUT/dom-search" --data-dir "$DATA" --dom-seed 0 --json "$OUT/dom-search/seed0.json"
  "$WAS" eval "$OUT/dom-search" --data-dir "$DATA" --dom macs --json "$OUT/dom-search/profile.json"
fi

# (b) K draws per step, equal wall-clock: K=2 gets half the epochs.
train draws1 "$EPOCHS"
train draws2-mean $((EPOCHS / 2)) --draws 2 --combine mean
train draws2-min $((EPOCHS / 2)) --draws 2 --combine min
"$WAS" eval "$OUT/draws1" "$OUT/draws2-mean" "$OUT/draws2-min" --data-dir "$DATA" --json "$OUT/draws.json"
