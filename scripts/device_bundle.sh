#!/usr/bin/env bash
# Gathers, on this (Debian) machine, the headers and small libraries a build
# on the GPU device machine needs besides its own PyTorch (which has no
# package registry): CLI11, nlohmann-json, GoogleTest, Gloo's headers, and the
# JPEG/PNG/zlib headers and libraries, into build-device/prefix (ignored by
# git; carried to the device with the run tool's carry=["build-device"]).
# Then, on the device: scripts/device_check.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
was_install_deps
P="$ROOT/build-device/prefix"  # laid out as /usr is, so that the packages' CMake files find their files
rm -rf "$P"
MA=$(gcc -print-multiarch)
copy() { mkdir -p "$P/$(dirname "$1")"; cp -rL "/usr/$1" "$P/$1"; }
for h in CLI nlohmann gtest gmock gloo jpeglib.h jmorecfg.h jerror.h png.h pngconf.h pnglibconf.h zlib.h zconf.h; do
  [ -e "/usr/include/$h" ] && copy "include/$h"
done
[ -e "/usr/include/$MA/jconfig.h" ] && copy "include/$MA/jconfig.h"
# The versioned names too: binaries load libraries by their SONAME.
for l in libgtest.a libgtest_main.a libgmock.a libgmock_main.a libjpeg.so libjpeg.so.62 libpng16.so libpng16.so.16 libpng.so \
         libz.so libz.so.1; do
  [ -e "/usr/lib/$MA/$l" ] && copy "lib/$MA/$l"
done
for c in "lib/$MA/cmake/GTest" share/cmake/CLI11 share/cmake/nlohmann_json "lib/$MA/cmake/CLI11" "lib/$MA/cmake/nlohmann_json"; do
  [ -d "/usr/$c" ] && copy "$c"
done
du -sh "$ROOT/build-device" | sed 's/^/bundle: /'
