#!/usr/bin/env bash
# Fails, naming the files, if any C++ source differs from clang-format's
# layout (.clang-format). Fix with: clang-format -i FILE...
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v clang-format >/dev/null || { echo "clang-format is missing: run scripts/setup.sh (Debian: clang-format)" >&2; exit 1; }
bad=()
while IFS= read -r f; do
  [ -f "$f" ] || continue
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done < <(git ls-files --cached --others --exclude-standard -- '*.cpp' '*.h')
if [ ${#bad[@]} -gt 0 ]; then
  echo "not clang-format clean (${#bad[@]} files): ${bad[*]}" >&2
  echo "fix: clang-format -i ${bad[*]}" >&2
  exit 1
fi
echo "clang-format clean"
