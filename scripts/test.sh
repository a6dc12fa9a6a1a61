#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite through ctest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
was_install_deps
was_build
cd "$WAS_BUILD"
ctest --output-on-failure -j "$(nproc)"
