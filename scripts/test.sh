#!/usr/bin/env bash
# The whole test suite, built with AddressSanitizer + UndefinedBehaviorSanitizer
# (LeakSanitizer included): unit, plugin, integration, interop (Python and
# gRPC C++ peers), security, install and fuzz-corpus replay tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
cmake -S . -B build-test -DCRPC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
  -DCRPC_WERROR=ON >/dev/null
cmake --build build-test -j"$(nproc)"
# The exported symbols and the ABI against abi/libcrpc.abi, on a separate
# non-sanitized RelWithDebInfo build of the library alone (build-abi/).
bash scripts/abi-check.sh
# The Debian packages: dpkg-buildpackage, lintian, and an outside project
# built against the unpacked packages (build-deb/; nothing is installed).
bash scripts/deb-check.sh
# Warnings are errors here (CRPC_WERROR), never in a user's default build.
# Two optimised builds, GCC and clang: some warnings (GCC's
# maybe-uninitialized) only appear at -O2.
for cc in gcc clang; do
  CC=$cc CXX=$([ $cc = gcc ] && echo g++ || echo clang++) \
    cmake -S . -B build-strict-$cc -DCMAKE_BUILD_TYPE=Release \
    -DCRPC_WERROR=ON >/dev/null
  if ! cmake --build build-strict-$cc -j"$(nproc)" >build-strict-$cc/build.log 2>&1
  then
    grep -E -B2 -A6 'error|warning' build-strict-$cc/build.log | head -80
    echo "strict $cc build failed (build-strict-$cc/build.log)"
    exit 1
  fi
  echo "strict $cc build: no warnings"
done

# libFuzzer: every target for a fixed number of inputs from a fixed seed
# (the same on every machine; scripts/fuzz.sh --long S explores). ctest
# below also replays each seed corpus. FUZZ=0 skips this step.
if [ "${FUZZ:-1}" != 0 ] && command -v clang >/dev/null; then
  bash scripts/fuzz.sh
fi

# ThreadSanitizer over the threaded tests (reactor, workers, channels).
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCRPC_BUILD_BENCH=OFF \
  -DCRPC_BUILD_EXAMPLES=OFF -DCMAKE_C_FLAGS="-fsanitize=thread -O1" \
  -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
  -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread >/dev/null
cmake --build build-tsan -j"$(nproc)" --target test_e2e test_lb test_lifecycle \
  test_hostile_server_side test_hostile_client_side test_health \
  test_failmalloc test_user_loop test_interceptors test_retry >/dev/null
TSAN_OPTIONS="halt_on_error=1" ctest --test-dir build-tsan \
  -R '^(integration_|health_unit)' --output-on-failure --timeout 300

export ASAN_OPTIONS="detect_leaks=1:detect_container_overflow=0:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
ctest --test-dir build-test --output-on-failure -j"$(nproc)" --timeout 300

