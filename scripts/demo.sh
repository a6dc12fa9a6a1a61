#!/usr/bin/env bash
# The main job: installs what is missing, builds, trains the small CNN on
# Fashion-MNIST as a baseline and with WAS-CT for the same budget, and prints
# AOM and DOM side by side: top-1, MACs, sparsity. A few minutes on 2 cores.
#
#   scripts/demo.sh                 # 3 epochs each, into runs/demo
#   EPOCHS=1 OUT=/tmp/d scripts/demo.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
was_install_deps
was_build

EPOCHS="${EPOCHS:-3}"
OUT="${OUT:-$WAS_ROOT/runs/demo}"
WAS="$WAS_BUILD/was"
COMMON=(--model small_cnn --dataset fashion-mnist --epochs "$EPOCHS" --seed 0)

train() {  # train NAME POLICY: skipped when finished, resumed when interrupted
  local dir="$OUT/$1"
  if [ -f "$dir/last.pt" ]; then
    "$WAS" train --resume "$dir" --epochs "$EPOCHS"
  else
    "$WAS" train "${COMMON[@]}" --was "$2" --out "$dir"
  fi
}

echo "== baseline (no WAS), $EPOCHS epochs"
train baseline none
echo "== WAS-CT (crop 0.8:1.0 + translate 0.3:0.3), $EPOCHS epochs"
train ct CT
echo
echo "== Fashion-MNIST test set, AOM and DOM (DOM seed 0), per-mode BatchNorm statistics"
"$WAS" eval "$OUT/baseline" "$OUT/ct" --json "$OUT/summary.json"
echo
echo "== Self-check of the WAS-CT checkpoint: AOM = plain forward with W, DOM = forward with its shadow weights"
"$WAS" check "$OUT/ct"
