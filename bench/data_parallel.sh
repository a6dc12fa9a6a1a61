#!/usr/bin/env bash
# Data-parallel training throughput on this machine: 1 process x 2 threads
# against 2 processes x 1 thread (`was train --nproc 2`), same global batch
# (128) and data, alternated over rounds so that both see the same machine.
# Prints images/s per round, the medians, their ratio, and the time each rank
# spends inside the gradient all-reduce per step.
#
#   bench/data_parallel.sh CIFAR10_DIR [ROUNDS=2] [IMAGES=1280]
#   MODEL=resnet18 WAS=build/was (defaults)
set -euo pipefail
DATA=${1:?usage: bench/data_parallel.sh CIFAR10_DIR [ROUNDS] [IMAGES]}
ROUNDS=${2:-2}
IMAGES=${3:-1280}
MODEL=${MODEL:-resnet18}
WAS=${WAS:-build/was}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

field() { grep -o "\"$1\":[0-9.e+-]*" "$2" | tail -1 | cut -d: -f2; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

declare -A ips steps_ar
for round in $(seq 1 "$ROUNDS"); do
  for config in 1x2 2x1; do
    out="$TMP/$config-$round"
    flags="--threads 2"
    [ "$config" = 2x1 ] && flags="--nproc 2"
    "$WAS" train --model "$MODEL" --dataset cifar10 --data-dir "$DATA" --train-subset "$IMAGES" --test-subset 256 \
      --epochs 1 --eval-every 0 --bn-batches 0 --no-augment --batch-size 128 --no-progress $flags --out "$out" \
      >/dev/null 2>"$out.err" || { cat "$out.err"; exit 1; }
    rate=$(field images_per_s "$out/metrics.jsonl")
    ips[$config]+="$rate "
    if [ "$config" = 2x1 ]; then
      steps=$(field step "$out/metrics.jsonl")
      ar=$(field allreduce_seconds "$out/metrics.jsonl")
      steps_ar[$config]+="$(awk -v a="$ar" -v s="$steps" 'BEGIN {printf "%.4f", a / s}') "
    fi
    printf "round %d  %s  %7.1f img/s\n" "$round" "$config" "$rate"
  done
done
one=$(echo ${ips[1x2]} | tr ' ' '\n' | median)
two=$(echo ${ips[2x1]} | tr ' ' '\n' | median)
ar=$(echo ${steps_ar[2x1]} | tr ' ' '\n' | median)
printf "\n%s, global batch 128, %d images per run, %d rounds (medians)\n" "$MODEL" "$IMAGES" "$ROUNDS"
printf "  1 process  x 2 threads  %7.1f img/s\n" "$one"
printf "  2 processes x 1 thread  %7.1f img/s  (%.2fx)\n" "$two" "$(awk -v a="$two" -v b="$one" 'BEGIN {print a / b}')"
printf "  all-reduce per step (rank 0, 2 processes): %.1f ms\n" "$(awk -v a="$ar" 'BEGIN {print a * 1000}')"
