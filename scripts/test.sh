#!/usr/bin/env bash
# The whole test suite, built with AddressSanitizer + UndefinedBehaviorSanitizer
# (LeakSanitizer included): unit, plugin, integration, interop (Python and
# gRPC C++ peers), security, install and fuzz-corpus replay tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
cmake -S . -B build-test -DCRPC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-test -j"$(nproc)"
# libFuzzer: every target for a short, bounded time (FUZZ_SECONDS each; 0
# skips); ctest below also replays each seed corpus. Run first so that
# ctest's summary closes the output.
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
if [ "$FUZZ_SECONDS" -gt 0 ] && command -v clang >/dev/null; then
  CC=clang cmake -S . -B build-fuzz -DCRPC_FUZZ=ON -DCRPC_BUILD_EXAMPLES=OFF \
    -DCRPC_BUILD_BENCH=OFF >/dev/null
  cmake --build build-fuzz -j"$(nproc)" --target crpc_fuzzers >/dev/null
  for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    work=$(mktemp -d)
    cp tests/fuzz/corpus/"${name#fuzz_}"/* "$work"/ 2>/dev/null || true
    if ! ./build-fuzz/tests/fuzz/"$name" -max_total_time="$FUZZ_SECONDS" \
         -print_final_stats=1 "$work" >"$work.log" 2>&1; then
      tail -40 "$work.log"
      echo "$name: libFuzzer found a failure"
      exit 1
    fi
    echo "$name: $(grep -E '^Done' "$work.log")"
    rm -rf "$work" "$work.log"
  done
fi

# ThreadSanitizer over the threaded tests (reactor, workers, channels).
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCRPC_BUILD_BENCH=OFF \
  -DCRPC_BUILD_EXAMPLES=OFF -DCMAKE_C_FLAGS="-fsanitize=thread -O1" \
  -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
  -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread >/dev/null
cmake --build build-tsan -j"$(nproc)" --target test_e2e test_lifecycle \
  test_hostile_server_side test_hostile_client_side test_health \
  test_failmalloc >/dev/null
TSAN_OPTIONS="halt_on_error=1" ctest --test-dir build-tsan \
  -R '^(integration_|health_unit)' --output-on-failure --timeout 300

export ASAN_OPTIONS="detect_leaks=1:detect_container_overflow=0:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
ctest --test-dir build-test --output-on-failure -j"$(nproc)" --timeout 300

