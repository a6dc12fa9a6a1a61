#!/usr/bin/env bash
# Runs every libFuzzer target of a WAS_FUZZ build for SECONDS each, its corpus
# seeded with valid files of its format (written here by Python and by the
# build's own `was`), and prints what ran: target, executions, seconds.
# A crash, a sanitizer report or an exception other than was::Error fails it;
# the input that did it is kept under BUILD/fuzz-findings/.
#
#   scripts/fuzz.sh [BUILD=build-san] [SECONDS=20]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD=$(cd "${1:-$ROOT/build-san}" && pwd)
SECONDS_EACH=${2:-20}
WORK=$(mktemp -d /tmp/was-fuzz.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# --- seeds: one valid file (or string) of each kind ----------------------------
S="$WORK/seeds"
mkdir -p "$S"/{idx,cifar,image,checkpoint,policy,experiment}
/usr/bin/python3 - "$S" <<'PY'
import gzip, io, struct, sys
from PIL import Image
s = sys.argv[1]
images = struct.pack('>IIII', 0x803, 2, 4, 4) + bytes(range(32))
labels = struct.pack('>II', 0x801, 2) + bytes([1, 7])
open(f'{s}/idx/images.idx', 'wb').write(images)
open(f'{s}/idx/labels.idx', 'wb').write(labels)
open(f'{s}/idx/images.idx.gz', 'wb').write(gzip.compress(images))
open(f'{s}/cifar/cifar10.bin', 'wb').write(bytes([3]) + bytes(3072) + bytes([9]) + bytes(range(256)) * 12)
open(f'{s}/cifar/cifar100.bin', 'wb').write(bytes([2, 41]) + bytes(3072))
for mode, name in [('RGB', 'rgb'), ('L', 'grey'), ('CMYK', 'cmyk')]:
    im = Image.new(mode, (8, 8))
    im.save(f'{s}/image/{name}.jpg', quality=90)
    if mode != 'CMYK':
        im.save(f'{s}/image/{name}.png')
Image.new('RGBA', (4, 4)).save(f'{s}/image/rgba.png')
for i, text in enumerate(['CT', 'CT@p=0.5', 'paper:C', 'paper:CT', 'crop=0.4:0.6,granularity=filter',
                          'translate=0.1:0.3', 'rotate=0:45', 'crop=0.5:0.7', 'dom:3', 'aom', 'none']):
    open(f'{s}/policy/{i}.txt', 'w').write(text)
PY
cp "$ROOT"/configs/*.json "$S/experiment/"
# A finished run: its checkpoint holds every mode's BatchNorm statistics for the loader to read.
"$BUILD/was" train --dataset synthetic --epochs 1 --batch-size 64 --bn-batches 1 --no-progress \
  --was CT --out "$WORK/run" >/dev/null 2>&1
"$BUILD/was" export "$WORK/run" --out "$S/checkpoint/model.was" >/dev/null 2>&1
cp "$WORK/run/last.pt" "$S/checkpoint/last.pt"

# --- the runs ------------------------------------------------------------------
FINDINGS="$BUILD/fuzz-findings"
mkdir -p "$FINDINGS"
printf '%-12s %12s %8s\n' target executions seconds
status=0
for target in idx cifar image checkpoint policy experiment; do
  mkdir -p "$WORK/corpus/$target"
  # Inputs that once found a bug run first, every time (fuzz/regressions/TARGET/).
  regressions=()
  [ -d "$ROOT/fuzz/regressions/$target" ] && regressions=("$ROOT/fuzz/regressions/$target")
  log="$WORK/$target.log"
  if ! (cd "$WORK" && "$BUILD/fuzz/was_fuzz_$target" -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 \
          -timeout=30 -print_final_stats=1 -artifact_prefix="$FINDINGS/$target-" \
          "$WORK/corpus/$target" "$S/$target" "${regressions[@]}" >"$log" 2>&1); then
    echo "FUZZ FINDING in $target (input kept under $FINDINGS):"
    tail -n 40 "$log"
    status=1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  printf '%-12s %12s %8s\n' "$target" "${runs:-?}" "${secs:-$SECONDS_EACH}"
done
exit $status
