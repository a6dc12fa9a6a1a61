#!/usr/bin/env bash
# Data-parallel training throughput on this machine: 1 process x 2 threads
# against 2 processes x 1 thread (`was train --nproc 2`), the latter with the
# gradient all-reduce overlapped with backward (default buckets) and without
# (`--bucket-mb 0`: one bucket after backward); same global batch (128) and
# data, alternated over rounds so that all see the same machine. Prints
# images/s per round, the medians and their ratios, and the time rank 0 waits
# for the all-reduce after backward per step (without overlap: all of it).
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
configs=(1x2 2x1 2x1-serial)

declare -A ips wait_ms
for round in $(seq 1 "$ROUNDS"); do
  for config in "${configs[@]}"; do
    out="$TMP/$config-$round"
    case $config in
      1x2) flags="--threads 2" ;;
      2x1) flags="--nproc 2" ;;
      2x1-serial) flags="--nproc 2 --bucket-mb 0" ;;
    esac
    "$WAS" train --model "$MODEL" --dataset cifar10 --data-dir "$DATA" --train-subset "$IMAGES" --test-subset 256 \
      --epochs 1 --eval-every 0 --bn-batches 0 --no-augment --batch-size 128 --no-progress $flags --out "$out" \
      >/dev/null 2>"$out.err" || { cat "$out.err"; exit 1; }
    rate=$(field images_per_s "$out/metrics.jsonl")
    ips[$config]+="$rate "
    if [ "$config" != 1x2 ]; then
      steps=$(field step "$out/metrics.jsonl")
      ar=$(field allreduce_seconds "$out/metrics.jsonl")
      wait_ms[$config]+="$(awk -v a="$ar" -v s="$steps" 'BEGIN {printf "%.2f", 1000 * a / s}') "
    fi
    printf "round %d  %-10s  %7.1f img/s\n" "$round" "$config" "$rate"
  done
done
med() { echo $1 | tr ' ' '\n' | median; }
one=$(med "${ips[1x2]}")
printf "\n%s, global batch 128, %d images per run, %d rounds (medians)\n" "$MODEL" "$IMAGES" "$ROUNDS"
printf "  1 process  x 2 threads                      %7.1f img/s\n" "$one"
for config in 2x1 2x1-serial; do
  rate=$(med "${ips[$config]}")
  label="2 processes x 1 thread, overlapped"
  [ "$config" = 2x1-serial ] && label="2 processes x 1 thread, after backward"
  printf "  %-42s %7.1f img/s (%.2fx), all-reduce wait %.1f ms/step\n" "$label" "$rate" \
    "$(awk -v a="$rate" -v b="$one" 'BEGIN {print a / b}')" "$(med "${wait_ms[$config]}")"
done
