#!/usr/bin/env bash
# Data-parallel training throughput on this machine: 1 process x 2 threads
# against 2 processes x 1 thread (`was train --nproc 2`), the latter with the
# gradient all-reduce overlapped with backward (default buckets) and without
# (`--bucket-mb 0`: one bucket after backward); same global batch (128) and
# data, alternated over rounds so that all see the same machine. Prints
# images/s per round, the medians and their ratios, and the time rank 0 waits
# for the all-reduce after backward per step (without overlap: all of it).
#
# With TWO_HOSTS=1 (as root) it adds 2x1-hosts: the two ranks in two network
# namespaces joined by a veth pair, made here and removed on exit, so that the
# gradients cross a real network stack as between two hosts (rank 0 finds its
# address by the route to the master, rank 1 is given its interface).
#
#   bench/data_parallel.sh CIFAR10_DIR [ROUNDS=2] [IMAGES=1280]
#   MODEL=resnet18 WAS=build/was TWO_HOSTS=0 (defaults)
set -euo pipefail
DATA=${1:?usage: bench/data_parallel.sh CIFAR10_DIR [ROUNDS] [IMAGES]}
ROUNDS=${2:-2}
IMAGES=${3:-1280}
MODEL=${MODEL:-resnet18}
WAS=${WAS:-build/was}
TWO_HOSTS=${TWO_HOSTS:-0}
WAS=$(realpath "$WAS")
TMP=$(mktemp -d)
NS_A=was-bench-a$$ NS_B=was-bench-b$$ VETH_A=wba$$ VETH_B=wbb$$
cleanup() {
  rm -rf "$TMP"
  if [ "$TWO_HOSTS" = 1 ]; then ip netns del "$NS_A" 2>/dev/null || true; ip netns del "$NS_B" 2>/dev/null || true; fi
}
trap cleanup EXIT

field() { grep -o "\"$1\":[0-9.e+-]*" "$2" | tail -1 | cut -d: -f2; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
configs=(1x2 2x1 2x1-serial)
if [ "$TWO_HOSTS" = 1 ]; then
  [ "$(id -u)" = 0 ] || { echo "TWO_HOSTS=1 makes network namespaces: run as root" >&2; exit 1; }
  ip netns add "$NS_A" && ip netns add "$NS_B"
  ip link add "$VETH_A" type veth peer name "$VETH_B"
  ip link set "$VETH_A" netns "$NS_A" && ip link set "$VETH_B" netns "$NS_B"
  ip -n "$NS_A" addr add 10.78.0.1/24 dev "$VETH_A" && ip -n "$NS_B" addr add 10.78.0.2/24 dev "$VETH_B"
  for ns in "$NS_A" "$NS_B"; do ip -n "$ns" link set lo up; done
  ip -n "$NS_A" link set "$VETH_A" up && ip -n "$NS_B" link set "$VETH_B" up
  configs+=(2x1-hosts)
fi
# One rank in each namespace; the same training as --nproc 2 runs.
two_hosts() {  # $1: out, $2: the log; the training flags follow
  local out=$1 log=$2
  shift 2
  local dist="--world-size 2 --master-addr 10.78.0.1 --master-port 29517 --threads 1"
  ip netns exec "$NS_A" "$WAS" "$@" $dist --rank 0 --out "$out" >/dev/null 2>"$log" &
  local r0=$!
  GLOO_SOCKET_IFNAME=$VETH_B ip netns exec "$NS_B" "$WAS" "$@" $dist --rank 1 --out "$out-rank1" \
    >/dev/null 2>"$log.rank1" || { cat "$log.rank1"; return 1; }
  wait "$r0"
}

declare -A ips wait_ms
for round in $(seq 1 "$ROUNDS"); do
  for config in "${configs[@]}"; do
    out="$TMP/$config-$round"
    train=(train --model "$MODEL" --dataset cifar10 --data-dir "$DATA" --train-subset "$IMAGES" --test-subset 256
      --epochs 1 --eval-every 0 --bn-batches 0 --no-augment --batch-size 128 --no-progress)
    case $config in
      1x2) flags="--threads 2" ;;
      2x1) flags="--nproc 2" ;;
      2x1-serial) flags="--nproc 2 --bucket-mb 0" ;;
    esac
    if [ "$config" = 2x1-hosts ]; then
      two_hosts "$out" "$out.err" "${train[@]}" || { cat "$out.err"; exit 1; }
    else
      "$WAS" "${train[@]}" $flags --out "$out" >/dev/null 2>"$out.err" || { cat "$out.err"; exit 1; }
    fi
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
for config in "${configs[@]:1}"; do
  rate=$(med "${ips[$config]}")
  case $config in
    2x1) label="2 processes x 1 thread, overlapped" ;;
    2x1-serial) label="2 processes x 1 thread, after backward" ;;
    2x1-hosts) label="2 namespaces x 1 thread (veth), overlapped" ;;
  esac
  printf "  %-42s %7.1f img/s (%.2fx), all-reduce wait %.1f ms/step\n" "$label" "$rate" \
    "$(awk -v a="$rate" -v b="$one" 'BEGIN {print a / b}')" "$(med "${wait_ms[$config]}")"
done
