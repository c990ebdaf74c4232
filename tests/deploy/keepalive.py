#!/usr/bin/python3
"""Keepalive enforcement of a crpc server against a real gRPC client
(grpcio, gRPC core's chttp2 transport).

  keepalive.py --crpc-server=PATH --py-interop=DIR

1. The server allows PINGs every 100 ms, also without calls
   (--keepalive_min_time_ms=100 --permit_keepalive_without_calls); a
   grpcio client pinging every 300 ms (grpc.keepalive_time_ms,
   grpc.keepalive_permit_without_calls) stays connected: its channel never
   leaves READY while it idles through a dozen PINGs and calls again.
2. The server keeps gRPC's defaults (5 min; no PINGs without calls) with
   2 strikes; a grpcio client pinging every 100 ms is sent
   GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings"), which grpcio reports on
   stderr (and then doubles its keepalive time, as gRFC A8 says).

Every wait is for an event (a line of output, a state change) bounded by
TIMEOUT; the idle stretch in case 1 is the thing under test, not a
synchronisation. Exit 0: passed; 1: failed.
"""

import argparse
import os
import select
import signal
import subprocess
import sys
import time

TIMEOUT = 30.0
procs = []

CLIENT = r"""
import os, sys, time, grpc
# the stubs live in DIR/grpc/testing: extend grpcio's package path
grpc.__path__.append(os.path.join(os.environ["CRPC_PY_STUBS"], "grpc"))
from grpc.testing import empty_pb2, test_pb2_grpc
port, ka_ms, idle_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
opts = [("grpc.keepalive_time_ms", ka_ms),
        ("grpc.keepalive_timeout_ms", 5000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_time_between_pings_ms", ka_ms)]
ch = grpc.insecure_channel("127.0.0.1:" + port, options=opts)
states = []
ch.subscribe(lambda s: states.append(s.name), try_to_connect=True)
stub = test_pb2_grpc.TestServiceStub(ch)
stub.EmptyCall(empty_pb2.Empty(), timeout=10)
print("first call OK", flush=True)
time.sleep(idle_s)  # idle: only keepalive PINGs on the connection
stub.EmptyCall(empty_pb2.Empty(), timeout=10)
print("states: " + " ".join(states), flush=True)
"""


def log(msg):
    print("keepalive: " + msg, flush=True)


def fail(msg):
    log("FAIL: " + msg)
    sys.exit(1)


def server(args, extra):
    p = subprocess.Popen([args.crpc_server, "--port=0"] + extra,
                         stdout=subprocess.PIPE)
    procs.append(p)
    port = p.stdout.readline().decode().strip()
    if not port:
        fail("the server did not start")
    return p, port


def client(args, port, ka_ms, idle_s):
    env = dict(os.environ, CRPC_PY_STUBS=args.py_interop,
               GRPC_VERBOSITY="info")
    p = subprocess.Popen([sys.executable, "-c", CLIENT, port, str(ka_ms),
                          str(idle_s)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    procs.append(p)
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crpc-server", required=True)
    ap.add_argument("--py-interop", required=True)
    args = ap.parse_args()
    try:
        # 1. allowed
        s, port = server(args, ["--keepalive_min_time_ms=100",
                                "--permit_keepalive_without_calls",
                                "--max_ping_strikes=2"])
        c = client(args, port, 300, 4.0)
        out, err = c.communicate(timeout=TIMEOUT)
        out, err = out.decode(), err.decode()
        if c.returncode != 0:
            fail("allowed client failed: %s\n%s" % (out, err))
        states = out.split("states: ")[-1].split()
        log("allowed pinger: channel states %s" % states)
        if "too_many_pings" in err:
            fail("an allowed client was told too_many_pings:\n" + err)
        if states.count("READY") != 1 or "IDLE" in states[1:]:
            fail("the allowed client's connection was replaced: %s" % states)
        s.send_signal(signal.SIGTERM)
        s.wait(timeout=TIMEOUT)

        # 2. too fast
        s, port = server(args, ["--max_ping_strikes=2"])
        c = client(args, port, 100, 60.0)
        end = time.monotonic() + TIMEOUT
        err = b""
        while b"too_many_pings" not in err:
            left = end - time.monotonic()
            if left <= 0 or not select.select([c.stderr], [], [], left)[0]:
                fail("no too_many_pings within %.0f s:\n%s" % (
                    TIMEOUT, err.decode()))
            b = os.read(c.stderr.fileno(), 4096)
            if not b:
                fail("the client exited: %s" % err.decode())
            err += b
        line = [l for l in err.decode().splitlines()
                if "too_many_pings" in l][0]
        log("fast pinger: grpcio says: " + line.strip()[-200:])
        log("PASS")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


if __name__ == "__main__":
    main()
