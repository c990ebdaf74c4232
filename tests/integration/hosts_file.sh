#!/bin/sh
# Runs test_lb's hosts-file case with /etc/hosts replaced, for this process
# tree only, by a file that gives hosts.crpc.test three addresses: a mount
# namespace of its own (unshare -m, root), so the machine's file is never
# touched. c-ares 1.18 (Debian 12) reads no other hosts path.
# usage: hosts_file.sh TEST_LB_BINARY
set -e
bin=$1
if ! unshare -m true 2>/dev/null; then
  echo "hosts_file.sh: this machine does not allow unshare -m (needs root):" \
       "the hosts-file case cannot run here" >&2
  exit 77
fi
hosts=$(mktemp)
trap 'rm -f "$hosts"' EXIT
{
  cat /etc/hosts
  echo "127.0.0.1 hosts.crpc.test"
  echo "127.0.0.2 hosts.crpc.test"
  echo "127.0.0.3 hosts.crpc.test"
} > "$hosts"
unshare -m sh -c 'mount --bind "$1" /etc/hosts && exec "$2" hosts' sh \
  "$hosts" "$bin"
