#!/usr/bin/env bash
# Issue 8, studies (a) and (b) on CIFAR-10 with VGG-16 (resumable: finished
# runs are skipped, interrupted ones continue from their checkpoints).
#  (a) DOM seed 0 against the profile `was dom-search --objective macs
#      --max-drop 1` picks from 32 candidates on a 10% validation split; both
#      evaluated once on the test set at the end.
#  (b) --draws 1 against --draws 2 --combine mean and --combine min, equal
#      epochs; each epoch's seconds are in metrics.jsonl, so accuracy can also be
#      compared at equal wall-clock time.
# Study (c) is `was experiment configs/was-settings.json --budget cpu`.
#
#   scripts/study_dom_and_draws.sh CIFAR10_DIR [OUT=runs/issue8] [EPOCHS=5] [SUBSET=10000]
set -euo pipefail
DATA=${1:?usage: scripts/study_dom_and_draws.sh CIFAR10_DIR [OUT] [EPOCHS] [SUBSET]}
OUT=${2:-runs/issue8}
EPOCHS=${3:-5}
SUBSET=${4:-10000}
WAS=${WAS:-build/was}
COMMON=(--model vgg16 --dataset cifar10 --data-dir "$DATA" --was CT --epochs "$EPOCHS" --train-subset "$SUBSET"
        --test-subset 2000 --bn-batches 20 --no-augment --checkpoint-every 20 --no-progress)

train() {  # train NAME EXTRA...
  local dir="$OUT/$1"; shift
  if [ -f "$dir/results.json" ]; then return; fi
  if [ -f "$dir/last.pt" ]; then "$WAS" train --resume "$dir" --no-progress; else "$WAS" train "${COMMON[@]}" "$@" --out "$dir"; fi
}

mkdir -p "$OUT"
# (a) the validation split is part of the run; the test set is read once, at the end.
train dom-search --val-fraction 0.1
"$WAS" dom-search "$OUT/dom-search" --data-dir "$DATA" --objective macs --max-drop 1 --candidates 32 \
  --plot "$OUT/dom-search" | tee "$OUT/dom-search/search.txt"
"$WAS" eval "$OUT/dom-search" --data-dir "$DATA" --dom-seed 0 --json "$OUT/dom-search/seed0.json"
"$WAS" eval "$OUT/dom-search" --data-dir "$DATA" --dom macs --json "$OUT/dom-search/profile.json"

# (b) K draws per step.
train draws1
train draws2-mean --draws 2 --combine mean
train draws2-min --draws 2 --combine min
"$WAS" eval "$OUT/draws1" "$OUT/draws2-mean" "$OUT/draws2-min" --data-dir "$DATA" --json "$OUT/draws.json"
