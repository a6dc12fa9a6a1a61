#!/usr/bin/env bash
# A short `--protocol paper` run of every `_paper` model with paper:CT on
# CIFAR-10 (issue 14's check): trains, evaluates AOM, the fixed DOM and the
# stochastic DOM (with running statistics and as the released code does),
# reports the three selections, then `was report` on each run.
#
#   scripts/paper_smoke.sh CIFAR10_DIR [OUT=runs/paper-smoke] [EPOCHS=2] [SUBSET=1000]
set -euo pipefail
DATA=${1:?usage: scripts/paper_smoke.sh CIFAR10_DIR [OUT] [EPOCHS] [SUBSET]}
OUT=${2:-runs/paper-smoke}
EPOCHS=${3:-2}
SUBSET=${4:-1000}
WAS=${WAS:-build/was}
mkdir -p "$OUT"
for model in vgg16_paper resnet18_paper resnet34_paper googlenet_paper mobilenetv2_paper efficientnet_lite0_paper; do
  policy=paper:CT
  [ "$model" = googlenet_paper ] && policy=paper:rcrop=0.6:0.8,translate=0.3:0.3  # googlenet.py's crop scale
  dir="$OUT/$model"
  if [ ! -f "$dir/results.json" ]; then
    if [ -f "$dir/last.pt" ]; then "$WAS" train --resume "$dir" --no-progress
    else
      "$WAS" train --model "$model" --dataset cifar10 --data-dir "$DATA" --was "$policy" --protocol paper \
        --epochs "$EPOCHS" --train-subset "$SUBSET" --val-fraction 0.2 --test-subset 500 --stochastic-dom 2 \
        --bn-batches 4 --no-progress --out "$dir" 2> "$dir.log" || { cat "$dir.log"; exit 1; }
    fi
  fi
  "$WAS" report "$dir" --no-plots --out "$dir/report" 2>/dev/null
done
# One line per model: the final results and selections.
for model in vgg16_paper resnet18_paper resnet34_paper googlenet_paper mobilenetv2_paper efficientnet_lite0_paper; do
  /usr/bin/python3 - "$OUT/$model/results.json" "$model" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); s = r["selection"]
print(f"{sys.argv[2]:26s} AOM {r['aom']['top1']:6.2f} (MACs {r['aom']['macs']/1e6:7.2f} M)  DOM {r['dom']['top1']:6.2f} "
      f"(MACs {r['dom']['macs']/1e6:7.2f} M)  stochastic DOM {r['stochastic_dom']['running']['mean']:6.2f} / "
      f"{r['stochastic_dom']['paper']['mean']:6.2f} as the paper  AOM as the paper: final {s['aom_paper']['final']:6.2f} "
      f"best-test {s['aom_paper']['best_test']:6.2f} val-selected {s['aom_paper']['val_selected']:6.2f}")
PY
done
