#!/usr/bin/env bash
# Installs the Debian packages the project needs (only the missing ones, quietly)
# and builds it in Release into build/. Sourced by demo.sh and test.sh.
set -euo pipefail

WAS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WAS_BUILD="${WAS_BUILD:-$WAS_ROOT/build}"

WAS_PACKAGES=(
  cmake ninja-build g++ pkg-config
  libtorch-dev            # LibTorch 1.13 (CPU)
  libopenblas0-pthread    # an optimised BLAS for LibTorch (Debian's default is the reference BLAS)
  libcli11-dev            # command line
  nlohmann-json3-dev      # metrics, checkpoint metadata
  zlib1g-dev              # gzip IDX files
  libjpeg62-turbo-dev     # image folders: JPEG
  libpng-dev              # image folders: PNG
  libgtest-dev            # tests
  libbenchmark-dev        # bench/
  gnuplot-nox             # `was report` plots (SVG)
  clang-format git        # the format check (scripts/check_format.sh, a ctest test)
  dataset-fashion-mnist   # the demo's data
  libgloo-dev             # data-parallel training: the Gloo headers that c10d includes
  python3-pil python3-numpy  # the CIFAR-10 test runs ../shared/datasets/cifar10-jpeg/to_cifar_bin.py
  python3-torch python3-torchvision python3-pytest  # tests/python: the paper family against torchvision
  pybind11-dev python3-dev  # the Python package (python/): `import was`
)

was_install_deps() {
  local missing=()
  for p in "${WAS_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# The benchmarks (bench/) are not needed by the demo or the tests; set
# WAS_BUILD_BENCH=ON to build them too (or configure build/ by hand).
was_build() {
  cmake -S "$WAS_ROOT" -B "$WAS_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DWAS_BUILD_BENCH="${WAS_BUILD_BENCH:-OFF}" >/dev/null
  cmake --build "$WAS_BUILD" -j "$(nproc)"
}
