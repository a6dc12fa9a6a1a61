#!/usr/bin/env bash
# Installs what the benchmarks need and compare against (the Python peer:
# python3-torch, python3-torchvision), builds them, and runs the one named:
#   scripts/bench.sh                       # build only
#   scripts/bench.sh was_bench_step --models resnet18 --rounds 2
#   scripts/bench.sh python_package.py     # bench/*.py run with /usr/bin/python3 and the package
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
was_install_deps
WAS_BUILD_BENCH=ON was_build
[ $# -eq 0 ] && exit 0
name="$1"
shift
case "$name" in
  *.py) PYTHONPATH="$WAS_BUILD/python" exec /usr/bin/python3 "$WAS_ROOT/bench/$name" "$@" ;;
  *.sh) exec bash "$WAS_ROOT/bench/$name" "$@" ;;
  *) exec "$WAS_BUILD/bench/$name" "$@" ;;
esac
