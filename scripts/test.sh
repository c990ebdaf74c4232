#!/usr/bin/env bash
# The whole test suite, built with AddressSanitizer + UndefinedBehaviorSanitizer
# (LeakSanitizer included): unit, plugin, integration, interop (Python and
# gRPC C++ peers), security, install and fuzz-corpus replay tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
cmake -S . -B build-test -DCRPC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-test -j"$(nproc)"
export ASAN_OPTIONS="detect_leaks=1:detect_container_overflow=0:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
ctest --test-dir build-test --output-on-failure -j"$(nproc)" --timeout 300
