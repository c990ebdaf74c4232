#!/bin/sh
# metrics_file_test.sh SERVER CLIENT WORKDIR: helloworld-server with
# --metrics_file, N calls with helloworld-client, then the file must show
# them (polled, bounded wait), pass `promtool check metrics` and count N.
# Exits 77 (skipped) when promtool is not installed.
set -u
server=$1 client=$2 dir=$3
N=7
command -v promtool >/dev/null 2>&1 || { echo "promtool not found: skipped"; exit 77; }
rm -rf "$dir" && mkdir -p "$dir" || exit 1
file=$dir/metrics.prom
"$server" --port=0 --metrics_file="$file" >"$dir/out" 2>"$dir/err" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
# the server prints its address once it serves (at most 20 s)
i=0
until grep -q 'listening on' "$dir/out" 2>/dev/null; do
  i=$((i + 1))
  [ $i -le 200 ] && kill -0 $pid 2>/dev/null || { echo "server did not start"; cat "$dir/err"; exit 1; }
  sleep 0.1
done
addr=$(sed -n 's/.*listening on //p' "$dir/out")
k=0
while [ $k -lt $N ]; do
  "$client" --target="$addr" --name="n$k" >/dev/null || { echo "call $k failed"; exit 1; }
  k=$((k + 1))
done
want="grpc_server_call_started_total{grpc_method=\"helloworld.Greeter/SayHello\"} $N"
i=0
until grep -qF "$want" "$file" 2>/dev/null; do
  i=$((i + 1))
  [ $i -le 200 ] || { echo "metrics file never showed $N calls:"; cat "$file"; exit 1; }
  sleep 0.1
done
promtool check metrics <"$file" || { echo "promtool check metrics failed"; exit 1; }
grep -qF "grpc_server_call_duration_seconds_count{grpc_method=\"helloworld.Greeter/SayHello\",grpc_status=\"OK\"} $N" "$file" || {
  echo "duration histogram count is not $N:"; grep duration_seconds_count "$file"; exit 1; }
# no temporary files left behind by the atomic rewrite
if ls "$dir" | grep -q '\.tmp\.'; then echo "temporary file left:"; ls "$dir"; exit 1; fi
echo "ok: $N calls in $file, promtool happy"
