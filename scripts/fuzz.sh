#!/usr/bin/env bash
# libFuzzer over every target in tests/fuzz/, from its seed corpus.
#
#   scripts/fuzz.sh            the gate's short run (scripts/test.sh): a fixed
#                              seed and a fixed number of inputs per target,
#                              so every machine runs the same inputs and the
#                              result does not depend on the machine's speed
#   scripts/fuzz.sh --long S   exploration: S seconds per target, a random
#                              seed; not for CI (new inputs with coverage are
#                              left in build-fuzz/corpus-<target>/ to review
#                              and add to tests/fuzz/corpus/)
#
# Memory is bounded explicitly (libFuzzer's -rss_limit_mb and
# -malloc_limit_mb, and a small ASan quarantine so that freed memory held
# back for use-after-free detection cannot reach the RSS limit). A failing
# input is printed in hex, with the command that replays it.
set -euo pipefail
cd "$(dirname "$0")/.."

LONG=0
if [ "${1:-}" = "--long" ]; then
  LONG=${2:?--long takes a number of seconds per target}
fi

# Inputs per target in the short run: about 5-10 s each on a 2-vCPU
# machine under ASan (the server connection target is slow per input).
declare -A RUNS=(
  [timeout]=2000000 [percent]=300000 [base64]=500000 [metadata]=200000
  [decompress]=1000000 [deframer]=300000 [server_conn]=2000
  [service_config]=200000
)

command -v clang >/dev/null || { echo "fuzz.sh: clang not found"; exit 1; }
CC=clang cmake -S . -B build-fuzz -DCRPC_FUZZ=ON -DCRPC_BUILD_EXAMPLES=OFF \
  -DCRPC_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target crpc_fuzzers >/dev/null

export ASAN_OPTIONS="quarantine_size_mb=16:malloc_context_size=10:detect_leaks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
LIMITS=(-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=30 -max_len=4096)

for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  target=${name#fuzz_}
  if [ "$LONG" -gt 0 ]; then
    work=build-fuzz/corpus-$target
    mkdir -p "$work"
    mode=(-max_total_time="$LONG")
  else
    work=$(mktemp -d)
    [ -n "${RUNS[$target]:-}" ] || { echo "fuzz.sh: no run count for $target"; exit 1; }
    mode=(-seed=1 -runs="${RUNS[$target]}" -max_total_time=600)
  fi
  cp tests/fuzz/corpus/"$target"/* "$work"/ 2>/dev/null || true
  art=$(mktemp -d)
  log=$art/log
  if ! ./build-fuzz/tests/fuzz/"$name" "${LIMITS[@]}" "${mode[@]}" \
       -print_final_stats=1 -artifact_prefix="$art/" "$work" >"$log" 2>&1; then
    tail -60 "$log"
    for f in "$art"/crash-* "$art"/oom-* "$art"/timeout-* "$art"/leak-*; do
      [ -f "$f" ] || continue
      echo "failing input $(basename "$f") ($(stat -c %s "$f") bytes), hex:"
      od -An -v -tx1 "$f" | tr -d ' \n' | fold -w 128
      echo
      echo "replay: echo HEX | perl -ne 'chomp; print pack \"H*\", \$_' > in && build-fuzz/tests/fuzz/$name in"
    done
    echo "$name: libFuzzer found a failure"
    exit 1
  fi
  echo "$name: $(grep -E '^(Done|INFO: fuzzed for)' "$log" | tail -1)"
  rm -rf "$art"
  [ "$LONG" -gt 0 ] || rm -rf "$work"
done
