#!/bin/sh
# bench_smoke: crpc-bench-client against crpc-bench-server, one second per
# RPC kind, in every mode: the threaded server and the one on a crpc_loop
# (--async), each under the client's default, --sync and --async (callback
# API) modes. The client itself fails (non-zero exit) on a non-OK status, a
# wrong payload size or zero completed calls; no timing is asserted.
set -eu
server=$1
client=$2
dir=$(mktemp -d)
spid=
trap '[ -n "$spid" ] && kill "$spid" 2>/dev/null; rm -rf "$dir"' EXIT
mkfifo "$dir/out"
for smode in --threads=1 --async; do
  "$server" --port=0 $smode >"$dir/out" &
  spid=$!
  # Blocks until the server prints its port, or sees EOF if it dies first.
  read -r port <"$dir/out" || true
  [ -n "$port" ] || { echo "bench_smoke: server printed no port" >&2; exit 1; }
  for cmode in "" --async; do
    for rpc in unary streaming; do
      # --threads=2: two client loops in --async (ignored otherwise)
      "$client" --target="127.0.0.1:$port" --rpc=$rpc --connections=2 \
        --inflight=4 --req_size=100 --resp_size=200 --duration=1 \
        --warmup=0.2 --threads=2 $cmode
    done
  done
  "$client" --target="127.0.0.1:$port" --rpc=unary --sync --duration=0.5 \
    --warmup=0
  # SIGTERM is a clean shutdown (exit 0; under ASan also leak-checked).
  kill "$spid"
  rc=0
  wait "$spid" || rc=$?
  spid=
  if [ "$rc" -ne 0 ]; then
    echo "bench_smoke: server $smode exited $rc after SIGTERM" >&2
    exit 1
  fi
done
# A run that cannot reach its server must fail, not report numbers.
for cmode in "" --async; do
  if "$client" --target="127.0.0.1:$port" --duration=0.2 --warmup=0 $cmode \
      >/dev/null 2>&1; then
    echo "bench_smoke: client $cmode reported success with no server" >&2
    exit 1
  fi
done
