#!/usr/bin/env bash
# Trains every model of the paper's zoo on CIFAR-10 briefly, with and without
# WAS (CT), then evaluates AOM and DOM for each: proof that each one trains
# and serves both modes, and each one's training images/s on this machine.
# Not a study: a training subset and a test subset keep it to minutes.
#
#   scripts/zoo_smoke.sh CIFAR10_BIN_DIR [OUT]      (CIFAR10_BIN_DIR from to_cifar_bin.py)
set -euo pipefail
DATA="${1:?usage: scripts/zoo_smoke.sh CIFAR10_BIN_DIR [OUT]}"
OUT="${2:-runs/zoo-smoke}"
WAS="${WAS:-build/was}"
TRAIN="${TRAIN_SUBSET:-1024}"
TEST="${TEST_SUBSET:-500}"
mkdir -p "$OUT"
for model in vgg16 resnet18 resnet34 googlenet mobilenetv2 efficientnet_lite0; do
  for policy in none CT; do
    dir="$OUT/$model-$policy"
    [ -f "$dir/results.json" ] && continue
    rm -rf "$dir"
    "$WAS" train --model "$model" --dataset cifar10 --data-dir "$DATA" --was "$policy" --epochs 1 \
      --train-subset "$TRAIN" --test-subset "$TEST" --bn-batches 4 --eval-every 0 --no-progress --out "$dir" \
      > "$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
  done
done
runs=()
for model in vgg16 resnet18 resnet34 googlenet mobilenetv2 efficientnet_lite0; do
  runs+=("$OUT/$model-none" "$OUT/$model-CT")
done
"$WAS" eval "${runs[@]}" --data-dir "$DATA" --test-subset "$TEST" --json "$OUT/eval.json"
echo
echo "training images/s (batch 128, one epoch of $TRAIN images):"
for r in "${runs[@]}"; do
  printf '%-40s %s\n' "$r" "$(grep -o '"images_per_s":[0-9.]*' "$r/metrics.jsonl" | tail -1 | cut -d: -f2)"
done
