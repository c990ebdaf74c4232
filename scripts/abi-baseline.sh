#!/usr/bin/env bash
# Regenerates the ABI baseline abi/libcrpc.abi from the current sources
# (see scripts/abi-check.sh). Run it after adding or changing anything in
# include/crpc/ that reaches the ABI (a function, a field of an options
# struct, an enum value), review `git diff abi/`, and commit the baseline
# with the change. If the check called the change incompatible, bump
# CRPC_SOVERSION in CMakeLists.txt too and say so in CHANGELOG.md.
set -euo pipefail
exec bash "$(dirname "$0")/abi-check.sh" --update
