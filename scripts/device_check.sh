#!/usr/bin/env bash
# On the GPU device machine (PyTorch 2.x with CUDA in its python3, no package
# registry): builds the library, the tool and the C++ tests against that
# PyTorch and the bundle of scripts/device_bundle.sh (carried as
# build-device), runs the C++ tests, then a short training and evaluation on
# --device cuda. Its log and the run's results go to $OUT when set.
#   run tool: command "bash scripts/device_check.sh", carry ["build-device"]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT=${OUT:-$ROOT/build-device/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/device_check.log") 2>&1
TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
B="$ROOT/build-device/build"
cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Release -DWAS_BUILD_BENCH=OFF \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$ROOT/build-device/prefix" \
  -DCMAKE_INCLUDE_PATH="$ROOT/build-device/prefix/include" -DWAS_PYTHON="$(command -v python3)"
cmake --build "$B" -j "$(nproc)"
export LD_LIBRARY_PATH="$ROOT/build-device/prefix/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu):${LD_LIBRARY_PATH:-}"
# The C++ suite (the Python, format and layering checks need Debian's tools).
(cd "$B" && ctest --output-on-failure -j 8 -E 'python|format|layers') || echo "device_check: some tests failed"
# A short training on the GPU, then its evaluation and self-check there.
"$B/was" train --model resnet20 --dataset synthetic --was CT --epochs 2 --eval-every 1 --val-fraction 0.2 \
  --mode-bn-curves --device cuda --no-progress --out "$OUT/run-cuda"
"$B/was" eval "$OUT/run-cuda" --device cuda --dom-seeds 0,1
"$B/was" check "$OUT/run-cuda" --device cuda
# The Python package, built against this PyTorch: its suite, then WAS on a CUDA model.
(cd "$B" && ctest --output-on-failure -R python.package) || echo "device_check: the Python package tests failed"
PYTHONPATH="$B/python" python3 - "$OUT/run-cuda" <<'PY' || echo "device_check: the Python CUDA check failed"
import sys, torch, was
model = was.load(sys.argv[1], device="cuda")
model.shadow.use_mode("dom:0")
x = torch.randn(4, model._run.in_channels, model.image_size, model.image_size, device="cuda")
dense = model(x)
print("python cuda: zoo DOM vs compact", (was.compact(model, mode="dom:0")(x) - dense).abs().max().item())
net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3)).cuda()
shadow = was.ShadowWeights(net, "CT", seed=0)
net(torch.randn(2, 3, 8, 8, device="cuda")).sum().backward()
print("python cuda: ShadowWeights gradient", net[0].weight.grad.abs().sum().item())
PY
echo "device_check: done"
