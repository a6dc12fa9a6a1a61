#!/usr/bin/env bash
# Makes `import was` work for /usr/bin/python3: installs what is missing,
# builds, and puts build/python on that interpreter's path (a was.pth file in
# its user site-packages, or with --system in /usr/local/lib/python3*/dist-packages).
# Undo with: rm "$(/usr/bin/python3 -m site --user-site)/was.pth"
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
was_install_deps
was_build
PY=/usr/bin/python3
if [ "${1:-}" = "--system" ]; then
  site="$($PY -c 'import sysconfig; print(sysconfig.get_path("purelib", vars={"base": "/usr/local"}))')"
else
  site="$($PY -m site --user-site)"
fi
package="$WAS_BUILD/python"
[ -f "$package/was/__init__.py" ] || { echo "error: the build has no Python package in $package (see the cmake output for why)" >&2; exit 1; }
mkdir -p "$site"
tmp="$(mktemp "$site/.was.pth.XXXXXX")"
echo "$package" >"$tmp"
mv -f "$tmp" "$site/was.pth"
cd /
$PY -c 'import was; print("import was: ok (" + was.__file__ + ")")'
echo "installed: $site/was.pth -> $package"
