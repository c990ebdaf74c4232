#!/usr/bin/env bash
# The main job: install dependencies, build, start the helloworld server on
# a free port, and have the helloworld client call it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target helloworld-server helloworld-client
# The server prints "crpc helloworld server listening on 127.0.0.1:PORT"
# once it is ready; read blocks until that line arrives.
exec 3< <(exec ./build/examples/helloworld/helloworld-server --port=0)
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
read -r line <&3 || { echo "the server exited before listening" >&2; exit 1; }
echo "$line"
port=${line##*:}
./build/examples/helloworld/helloworld-client --target="127.0.0.1:$port" \
  --name="${1:-crpc}"
