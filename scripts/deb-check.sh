#!/usr/bin/env bash
# The Debian packages (debian/), built and tried the way a user would use
# them, without touching the system:
#   1. dpkg-buildpackage -b -us -uc on a copy of the working tree in
#      build-deb/src (it writes the .debs beside the source, so the copy
#      keeps them inside build-deb/); no tests inside the package build;
#   2. lintian on the result: no error;
#   3. apt-get --simulate install of the three .debs: their dependencies
#      resolve on this (Debian 12) system;
#   4. the .debs unpacked with dpkg -x into build-deb/root (not installed),
#      and tests/install's outside project built and run against that root
#      only, with find_package(crpc) (CMAKE_PREFIX_PATH=root/usr) and with
#      `pkg-config crpc` (PKG_CONFIG_PATH into root/); crpc.pc and the CMake
#      package find their prefix from their own location, so an unpacked
#      root works as /usr would.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
work=$top/build-deb
rm -rf "$work"
mkdir -p "$work/src"
start=$(date +%s)

# 1. Build, from the files git knows about (committed or not).
git ls-files -z --cached --others --exclude-standard |
  xargs -0 tar -cf - --ignore-failed-read 2>/dev/null | tar -xf - -C "$work/src"
(cd "$work/src" &&
 DEB_BUILD_OPTIONS="nocheck parallel=${CRPC_DEB_JOBS:-2}" \
   dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1) || {
  tail -60 "$work/build.log"
  echo "deb-check: dpkg-buildpackage failed (log: $work/build.log)" >&2
  exit 1
}
built=$(date +%s)
debs=("$work"/*.deb)
for p in libcrpc0 libcrpc-dev protoc-gen-crpc; do
  ls "$work/${p}_"*.deb >/dev/null 2>&1 ||
    { echo "deb-check: no $p package was built" >&2; exit 1; }
done
echo "deb-check: built $(cd "$work" && ls ./*.deb | sed 's|^\./||' | tr '\n' ' ')in $((built - start)) s"

# 2. lintian: errors fail, warnings are shown.
changes=$(ls "$work"/*.changes)
if ! lintian --fail-on error --suppress-tags-from-file /dev/null \
     "$changes" >"$work/lintian.log" 2>&1; then
  cat "$work/lintian.log"
  echo "deb-check: lintian found errors" >&2
  exit 1
fi
echo "deb-check: lintian: $(grep -c '^E:' "$work/lintian.log" || true) errors," \
     "$(grep -c '^W:' "$work/lintian.log" || true) warnings (log: build-deb/lintian.log)"
grep '^W:' "$work/lintian.log" | sed 's/^/  /' || true

# 3. The packages' dependencies resolve (nothing is installed).
if ! apt-get install --simulate -q "${debs[@]}" >"$work/apt.log" 2>&1; then
  cat "$work/apt.log"
  echo "deb-check: the packages' dependencies do not resolve" >&2
  exit 1
fi
echo "deb-check: apt-get --simulate install: ok"

# 4. An outside project against the unpacked packages.
root=$work/root
for d in "${debs[@]}"; do dpkg -x "$d" "$root"; done
# No crpc outside root may be found instead: point the search at root only
# (check_install.cmake clears PKG_CONFIG_PATH and sets CMAKE_PREFIX_PATH).
cmake -DPREFIX="$root/usr" -DSOURCE_DIR="$top/tests/install" \
  -DWORK_DIR="$work/consumer" -DCC="${CC:-cc}" \
  -DPROTOC="$(command -v protoc)" -DPROTOC_GEN_C="$(command -v protoc-gen-c)" \
  -DPKG_CONFIG="$(command -v pkg-config)" -DGENERATOR="Unix Makefiles" \
  -DSANITIZE=OFF -P tests/install/check_install.cmake
echo "deb-check: ok in $(( $(date +%s) - start )) s"
