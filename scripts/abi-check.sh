#!/usr/bin/env bash
# The ABI check: builds libcrpc.so on its own (RelWithDebInfo, no
# sanitizers: abidw needs -g, and instrumented code is a poor baseline) in
# build-abi/, then
#   1. exports: `nm -D --defined-only` must list crpc_* symbols only;
#   2. ABI: abidw's view of the library, restricted to include/crpc/, must
#      equal the committed baseline abi/libcrpc.abi (abidiff). An
#      incompatible change (a removed or changed function, a struct that
#      changed size) and a compatible one (an added function or field) both
#      fail: changing the ABI is a decision, taken by regenerating the
#      baseline with scripts/abi-baseline.sh and committing it (and, when
#      abidiff calls the change incompatible, bumping CRPC_SOVERSION in
#      CMakeLists.txt and noting it in CHANGELOG.md).
#
#   scripts/abi-check.sh            check (run by scripts/test.sh)
#   scripts/abi-check.sh --update   rewrite abi/libcrpc.abi (what
#                                   scripts/abi-baseline.sh does)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
update=0
[ "${1:-}" = "--update" ] && update=1
build=build-abi
baseline=abi/libcrpc.abi

# -fdebug-prefix-map: no path of this checkout ends up in the baseline.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCRPC_BUILD_TESTS=OFF -DCRPC_BUILD_EXAMPLES=OFF -DCRPC_BUILD_BENCH=OFF \
  -DCRPC_SANITIZE=OFF "-DCMAKE_C_FLAGS=-fdebug-prefix-map=$root=." >/dev/null
cmake --build "$build" -j"${CRPC_ABI_JOBS:-2}" --target crpc_shared >/dev/null
lib=$(readlink -f "$build/lib/libcrpc.so")

# 1. Only crpc_* is exported (crpc__* is the library's private namespace).
bad=$(nm -D --defined-only "$lib" | awk '{print $NF}' |
      grep -Ev '^crpc_[a-z0-9]' || true)
if [ -n "$bad" ]; then
  echo "abi-check: libcrpc.so exports symbols outside crpc_*:" >&2
  echo "$bad" | sed 's/^/  /' >&2
  echo "Give them internal linkage (static) or keep them out of CRPC_API;" \
       "the library is built with -fvisibility=hidden." >&2
  exit 1
fi
echo "abi-check: exports: $(nm -D --defined-only "$lib" | wc -l) symbols, all crpc_*"

# 2. The ABI against the baseline.
abidw_flags=(--headers-dir include/crpc --no-corpus-path --no-show-locs
             --no-comp-dir-path --drop-private-types --drop-undefined-syms
             --no-elf-needed)
current=$build/libcrpc.abi
abidw "${abidw_flags[@]}" --out-file "$current" "$lib"
if [ "$update" = 1 ]; then
  mkdir -p abi
  cp "$current" "$baseline"
  echo "abi-check: wrote $baseline ($(grep -c '<elf-symbol' "$baseline") symbols);" \
       "review 'git diff $baseline' and commit it"
  exit 0
fi
if [ ! -f "$baseline" ]; then
  echo "abi-check: no $baseline; create it with scripts/abi-baseline.sh" >&2
  exit 1
fi
set +e
abidiff "$baseline" "$current" >"$build/abidiff.txt" 2>&1
rc=$?
set -e
if [ "$rc" -eq 0 ]; then
  echo "abi-check: ABI identical to $baseline"
  exit 0
fi
cat "$build/abidiff.txt" >&2
if [ $((rc & 3)) -ne 0 ]; then
  echo "abi-check: abidiff failed to run (exit $rc)" >&2
elif [ $((rc & 8)) -ne 0 ]; then
  echo "abi-check: INCOMPATIBLE ABI change against $baseline (abidiff exit $rc)." >&2
  echo "  If this is intended: bump CRPC_SOVERSION in CMakeLists.txt, note it" >&2
  echo "  in CHANGELOG.md, and regenerate: bash scripts/abi-baseline.sh" >&2
else
  echo "abi-check: the ABI changed against $baseline (abidiff exit $rc)." >&2
  echo "  Added functions or fields are compatible only if no existing struct" >&2
  echo "  changed size or layout (read the report above). If the change is" >&2
  echo "  intended, regenerate and commit: bash scripts/abi-baseline.sh" >&2
  echo "  (a struct a caller allocates that changed size is an incompatible" >&2
  echo "  change even when abidiff does not set exit bit 8: bump CRPC_SOVERSION)." >&2
fi
exit 1
