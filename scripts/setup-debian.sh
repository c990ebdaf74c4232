#!/usr/bin/env bash
# Installs what crpc needs to build and test on Debian 12 (bookworm).
# Runs apt-get through sudo when not root. Safe to run again.
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config clang
  libprotobuf-c-dev protobuf-c-compiler
  protobuf-compiler libprotobuf-dev libprotoc-dev
  libnghttp2-dev libssl-dev openssl zlib1g-dev libcmocka-dev
  python3 python3-grpcio python3-protobuf protobuf-compiler-grpc
  libgrpc++-dev grpc-proto nghttp2-client
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
