#!/usr/bin/env bash
# Installs what crpc needs to build and test on Debian 12 (bookworm).
# Runs apt-get through sudo when not root. Safe to run again.
set -euo pipefail
mapfile -t pkgs < "$(dirname "$0")/debian-packages.txt"
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
$SUDO apt-get install -y -q "${missing[@]}"
