#!/usr/bin/python3
"""Runs the crpc vs gRPC C++ and grpc-go benchmark (issues 5, 8, 13); writes
bench/RESULTS.md.

    /usr/bin/python3 bench/run.py --build-dir BUILD [--duration S]
        [--warmup S] [--repeats N] [--only SCENARIO,...] [--no-write]

Builds nothing: BUILD is a configured and built tree (targets crpc-bench-*,
grpcpp-bench-*, grpcgo-bench-server, helloworld-server, uv-greeter-server,
crpc_shared). Every
scenario runs for the pairs crpc client -> crpc server and C++ client -> C++
server, and the throughput scenarios also put both servers under the same
load generators (h2load and the C++ client). grpc-go's server (issue 13) is
a second reference: every load generator that meets the C++ server also
meets it (the crpc client, the C++ client, h2load), and each row shows crpc /
C++ and crpc / Go; without grpcgo-bench-server its columns say n/a. The
callback API (issue 8) runs
in the same run: crpc-bench-client --async against crpc-bench-server --async
(both on a crpc_loop their own thread drives), beside the blocking modes, and
h2load loads the single-threaded libuv greeter against the threaded
helloworld-server. Servers are pinned to CPU 0 and load to CPU 1
with taskset (both to CPU 0 for the same-CPU figures), each run is repeated
and the table shows medians and crpc / C++ ratios.

A failed run (a non-OK status, a wrong payload size, a crash, a hang) is
reported as FAILED in the table and the script exits 1: it never turns into a
number.
"""

import argparse
import datetime
import json
import os
import re
import select
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

SERVER_CPU = "0"
LOAD_CPU = "1"
METHOD_PATH = "/grpc.testing.BenchmarkService/UnaryCall"
KIB = 1024
MIB = 1024 * 1024
IDLE_CONNECTIONS = 1000

# ---------------------------------------------------------------- scenarios
# pairs: (load generator, server). Load generators: "crpc" and "grpcpp"
# (the bench clients), "crpc-sync" and "crpc-async" (the crpc client with
# --sync, --async) and "h2load". Servers: "crpc", "crpc-async" (--async: on
# a crpc_loop), "grpcpp" (completion queue API), "grpcpp-cb" (callback API),
# "grpcgo" (grpc-go), and for the greeter rows "uv-greeter" and
# "helloworld".
OWN_PAIRS = [("crpc", "crpc"), ("grpcpp", "grpcpp")]
SAME_LOAD = [("grpcpp", "crpc"), ("h2load", "crpc"), ("h2load", "grpcpp"),
             ("h2load", "grpcpp-cb")]
STREAM_SAME_LOAD = [("grpcpp", "crpc")]
# The callback API on both sides, in every scenario.
ASYNC_OWN = [("crpc-async", "crpc-async")]
# Which side the callback API's difference comes from (client only, server
# only): where one stream or call decides the figure.
ASYNC_SPLIT = [("crpc-async", "crpc"), ("crpc", "crpc-async")]
GREETER_PATH = "/helloworld.Greeter/SayHello"
# grpc-go's server under every load generator that meets the C++ server.
# and its own client (load "grpcgo") against it, like C++ -> C++.
GO_UNARY = [("grpcgo", "grpcgo"), ("crpc", "grpcgo"), ("grpcpp", "grpcgo"),
            ("h2load", "grpcgo")]
GO_STREAM = [("grpcgo", "grpcgo"), ("crpc", "grpcgo"), ("grpcpp", "grpcgo")]


def scenarios():
    out = []
    for where, same in (("cross-CPU", False), ("same-CPU", True)):
        out.append(dict(name="unary-latency-" + ("same" if same else "cross"),
                        title="unary latency, 1 in flight, 0 B, " + where,
                        rpc="unary", c=1, k=1, req=0, resp=0, same_cpu=same,
                        pairs=OWN_PAIRS + [("grpcpp", "grpcpp-cb")] +
                        ASYNC_OWN + [("crpc-sync", "crpc")] + GO_STREAM,
                        metrics=["p50_us", "p99_us", "calls_per_s"]))
    for c in (1, 4):
        for size, label in ((0, "0 B"), (KIB, "1 KiB")):
            out.append(dict(
                name="unary-tput-%dx100-%s" % (c, "1k" if size else "0"),
                title="unary throughput, %d conn x 100 in flight, %s" %
                (c, label),
                rpc="unary", c=c, k=100, req=size, resp=size, same_cpu=False,
                pairs=OWN_PAIRS + [("grpcpp", "grpcpp-cb")] + SAME_LOAD +
                ASYNC_OWN + [("h2load", "crpc-async")] + GO_UNARY,
                metrics=["calls_per_s", "calls_per_cpu_s"]))
    # Issue 13: large unary messages, few calls in flight.
    out.append(dict(name="unary-tput-4x10-64k",
                    title="unary throughput, 4 conn x 10 in flight, 64 KiB "
                    "request and response", rpc="unary", c=4, k=10,
                    req=64 * KIB, resp=64 * KIB, same_cpu=False,
                    pairs=OWN_PAIRS + [("grpcpp", "grpcpp-cb")] + SAME_LOAD +
                    GO_UNARY, metrics=["calls_per_s", "mib_per_s"]))
    out.append(dict(name="unary-tput-tls-1x100-1k",
                    title="TLS unary throughput, 1 conn x 100 in flight, "
                    "1 KiB", rpc="unary", c=1, k=100, req=KIB, resp=KIB,
                    same_cpu=False, tls=True,
                    pairs=OWN_PAIRS + [("grpcpp", "grpcpp-cb")] + SAME_LOAD +
                    ASYNC_OWN + [("h2load", "crpc-async")] + GO_UNARY,
                    metrics=["calls_per_s"]))
    for where, same in (("cross-CPU", False), ("same-CPU", True)):
        out.append(dict(name="pingpong-" + ("same" if same else "cross"),
                        title="streaming ping-pong, 1 stream, 0 B, " + where,
                        rpc="streaming", c=1, k=1, req=0, resp=0,
                        same_cpu=same,
                        pairs=OWN_PAIRS + [("grpcpp", "grpcpp-cb")] +
                        STREAM_SAME_LOAD + ASYNC_OWN +
                        ([] if same else ASYNC_SPLIT) + GO_STREAM,
                        metrics=["calls_per_s", "p50_us"]))
    for size, label in ((64 * KIB, "64k"), (MIB, "1m")):
        out.append(dict(name="stream-tput-" + label,
                        title="streaming throughput, 1 stream, %s messages" %
                        ("64 KiB" if size == 64 * KIB else "1 MiB"),
                        rpc="streaming", c=1, k=1, req=size, resp=size,
                        same_cpu=False,
                        pairs=OWN_PAIRS + [("grpcpp", "grpcpp-cb")] +
                        STREAM_SAME_LOAD + ASYNC_OWN + GO_STREAM,
                        metrics=["mb_per_s"]))
    # Issue 13: one direction at a time (the other way carries empty
    # messages), plain and TLS.
    for name, title, req, resp, tls in (
            ("stream-up-1m", "streaming upload, 1 stream, 1 MiB messages",
             MIB, 0, False),
            ("stream-down-1m", "streaming download, 1 stream, 1 MiB "
             "messages", 0, MIB, False),
            ("stream-up-tls-1m", "TLS streaming upload, 1 stream, 1 MiB "
             "messages", MIB, 0, True)):
        out.append(dict(name=name, title=title, rpc="streaming", c=1, k=1,
                        req=req, resp=resp, same_cpu=False, tls=tls,
                        pairs=OWN_PAIRS + [("grpcpp", "grpcpp-cb")] +
                        STREAM_SAME_LOAD + GO_STREAM,
                        metrics=["mib_per_s"]))
    # helloworld SayHello("world") under h2load: uv-greeter-server (libuv,
    # one thread) against helloworld-server (crpc's default threaded
    # server: reactor threads, handlers on the worker pool), both pinned
    # to the server CPU.
    for c in (1, 4):
        out.append(dict(name="greeter-%dx100" % c,
                        title="helloworld SayHello, %d conn x 100 in flight "
                        "(h2load)" % c, rpc="unary", c=c, k=100, req=0,
                        resp=0, same_cpu=False, service="greeter",
                        pairs=[("h2load", "uv-greeter"),
                               ("h2load", "helloworld")],
                        metrics=["calls_per_s", "calls_per_cpu_s"]))
    return out


# Targets: (scenario, metric, comparison) -> (op, bound). Comparisons:
# "own" is crpc->crpc vs C++->C++; "grpcpp"/"h2load" are the same load
# generator against both servers.
TARGETS = {
    ("unary-tput-1x100-0", "calls_per_s", "h2load"): (">=", 2.0),
    ("unary-tput-1x100-1k", "calls_per_s", "h2load"): (">=", 2.0),
    ("unary-tput-4x100-0", "calls_per_s", "h2load"): (">=", 2.0),
    ("unary-tput-4x100-1k", "calls_per_s", "h2load"): (">=", 2.0),
    ("unary-tput-1x100-0", "calls_per_s", "grpcpp"): (">=", 2.0),
    ("unary-tput-1x100-1k", "calls_per_s", "grpcpp"): (">=", 2.0),
    ("unary-tput-4x100-0", "calls_per_s", "grpcpp"): (">=", 2.0),
    ("unary-tput-4x100-1k", "calls_per_s", "grpcpp"): (">=", 2.0),
    ("unary-latency-same", "p50_us", "own"): ("<=", 0.6),
    ("pingpong-same", "calls_per_s", "own"): (">=", 1.5),
    ("pingpong-cross", "calls_per_s", "own"): (">=", 1.5),
    ("stream-tput-1m", "mb_per_s", "own"): (">=", 1.0),
    ("memory", "rss_per_conn_kb", "grpcpp"): ("<=", 0.25),
    ("memory", "rss_per_conn_kb", "own"): ("<=", 0.25),
    # issue 13's table: the rows where crpc trailed or barely led
    ("stream-up-tls-1m", "mib_per_s", "own"): (">=", 1.3),
    ("stream-tput-64k", "mb_per_s", "own"): (">=", 1.3),
    ("unary-tput-4x10-64k", "calls_per_s", "own"): (">=", 2.0),
    ("stream-up-1m", "mib_per_s", "own"): (">=", 1.5),
    ("stream-down-1m", "mib_per_s", "own"): (">=", 1.5),
}

METRIC_NAMES = {"calls_per_s": "calls/s", "p50_us": "p50 us",
                "calls_per_cpu_s": "calls per server CPU-s",
                "p99_us": "p99 us", "mb_per_s": "MB/s",
                "mib_per_s": "MiB/s",
                "rss_per_conn_kb": "KiB/conn"}
SERVER_NAMES = {"crpc": "crpc", "grpcpp": "C++ cq", "grpcpp-cb": "C++ cb",
                "grpcgo": "Go",
                "crpc-async": "crpc --async",
                "uv-greeter": "uv-greeter-server (1 thread)",
                "helloworld": "helloworld-server (threaded)"}
LOAD_NAMES = {"crpc": "crpc client", "grpcpp": "C++ client",
              "grpcgo": "Go client",
              "crpc-sync": "crpc client --sync",
              "crpc-async": "crpc client --async", "h2load": "h2load"}


MEMORY_PAIRS = [("crpc", "crpc"), ("grpcpp", "grpcpp"),
                ("grpcpp", "grpcpp-cb"), ("grpcpp", "crpc"),
                ("grpcgo", "grpcgo"), ("crpc", "grpcgo"),
                ("grpcpp", "grpcgo")]


class RunFailed(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- tools

class Tools:
    def __init__(self, build_dir):
        self.build = os.path.abspath(build_dir)
        self.bin = {}
        for name in ("crpc-bench-server", "crpc-bench-client",
                     "grpcpp-bench-server", "grpcpp-bench-client",
                     "grpcgo-bench-server", "grpcgo-bench-client",
                     "helloworld-server", "uv-greeter-server"):
            self.bin[name] = self._find(name)
        self.h2load = shutil.which("h2load")
        self.nghttp = shutil.which("nghttp")
        self.libcrpc = None
        for d, _, files in os.walk(self.build):
            if "libcrpc.so" in files:
                self.libcrpc = os.path.realpath(os.path.join(d, "libcrpc.so"))
                break

    def _find(self, name):
        for sub in ("bench", "examples/helloworld", "examples/libuv"):
            p = os.path.join(self.build, sub, name)
            if os.access(p, os.X_OK):
                return p
        for d, _, files in os.walk(self.build):
            if name in files and os.access(os.path.join(d, name), os.X_OK):
                return os.path.join(d, name)
        return None

    def has_server(self, kind):
        return bool(self.bin[SERVER_BINS[kind]])

    def has_load(self, kind):
        if kind == "h2load":
            return bool(self.h2load and self.nghttp)
        return bool(self.bin[client_bin(kind)])


SERVER_BINS = {"crpc": "crpc-bench-server", "crpc-async": "crpc-bench-server",
               "grpcpp": "grpcpp-bench-server",
               "grpcpp-cb": "grpcpp-bench-server",
               "grpcgo": "grpcgo-bench-server",
               "uv-greeter": "uv-greeter-server",
               "helloworld": "helloworld-server"}


def client_bin(load):
    """crpc-sync and crpc-async are modes of crpc-bench-client."""
    return ("crpc" if load.startswith("crpc") else load) + "-bench-client"


def client_mode_flags(load):
    return {"crpc-sync": ["--sync"], "crpc-async": ["--async"]}.get(load, [])


def server_cmd(tools, kind, tls=None):
    if kind in ("uv-greeter", "helloworld"):
        return [tools.bin[SERVER_BINS[kind]], "--port=0"]
    if kind == "crpc":
        cmd = [tools.bin["crpc-bench-server"], "--port=0", "--threads=1"]
    elif kind == "crpc-async":
        cmd = [tools.bin["crpc-bench-server"], "--port=0", "--async"]
    elif kind == "grpcgo":
        # --threads=1: GOMAXPROCS 1, the one CPU it is pinned to.
        cmd = [tools.bin["grpcgo-bench-server"], "--port=0", "--threads=1"]
    else:
        api = "callback" if kind == "grpcpp-cb" else "cq"
        cmd = [tools.bin["grpcpp-bench-server"], "--port=0", "--threads=1",
               "--api=" + api]
    if tls:
        cmd += ["--tls_cert=" + tls["cert"], "--tls_key=" + tls["key"]]
    return cmd


def pinned(cpu, cmd):
    return ["taskset", "-c", cpu] + cmd


def read_line(proc, timeout, what):
    """The next stdout line of |proc|, waiting at most |timeout| seconds."""
    end = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while not buf.endswith(b"\n"):
        left = end - time.monotonic()
        if left <= 0:
            raise RunFailed("%s: nothing on stdout after %.0f s" %
                            (what, timeout))
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        ch = os.read(fd, 1)
        if not ch:
            raise RunFailed("%s exited before printing a line (rc %s)" %
                            (what, proc.wait()))
        buf += ch
    return buf.decode(errors="replace").strip()


class Server:
    def __init__(self, cmd, cpu, logdir):
        self.cmd = pinned(cpu, cmd)
        self.errlog = tempfile.NamedTemporaryFile(
            dir=logdir, prefix="server-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE,
                                     stderr=self.errlog)
        line = read_line(self.proc, 15, os.path.basename(cmd[0]))
        if not line.split()[-1].rsplit(":", 1)[-1].isdigit():
            raise RunFailed("server printed %r, not a port" % line)
        self.port = int(line.split()[-1].rsplit(":", 1)[-1])

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RunFailed("no VmRSS for the server")

    def cpu_s(self):
        """CPU seconds (user + system) the server has used so far."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self):
        if self.proc.poll() is not None:
            raise RunFailed("server died during the run (rc %d): %s" %
                            (self.proc.returncode, self.stderr_tail()))

    def stderr_tail(self):
        self.errlog.flush()
        with open(self.errlog.name, errors="replace") as f:
            return f.read()[-2000:].strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RunFailed("server ignored SIGTERM for 10 s")
        self.proc.stdout.close()
        self.errlog.close()
        os.unlink(self.errlog.name)


# ---------------------------------------------------------------- gRPC body

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def payload_field(tag, size):
    """A Payload submessage (body = |size| zero bytes) as field |tag|."""
    body = b"\x12" + varint(size) + b"\0" * size
    return bytes([tag << 3 | 2]) + varint(len(body)) + body


def simple_request(req_size, resp_size):
    m = b""
    if resp_size:
        m += b"\x10" + varint(resp_size)  # response_size = 2
    if req_size:
        m += payload_field(3, req_size)   # payload = 3
    return m


def grpc_frame(msg):
    return b"\0" + struct.pack(">I", len(msg)) + msg


def response_frame_len(resp_size):
    return len(grpc_frame(payload_field(1, resp_size) if resp_size else b""))


# helloworld: HelloRequest{name = "world"} and its "Hello world" reply.
GREETER_NAME = b"world"


def greeter_request():
    return b"\x0a" + varint(len(GREETER_NAME)) + GREETER_NAME


def greeter_reply_frame_len():
    reply = b"Hello " + GREETER_NAME
    return len(grpc_frame(b"\x0a" + varint(len(reply)) + reply))


# ---------------------------------------------------------------- runs

def client_cmd(tools, load, sc, port, args, tls=None):
    cmd = [tools.bin[client_bin(load)]] + client_mode_flags(load) + [
           "--target=127.0.0.1:%d" % port, "--rpc=" + sc["rpc"],
           "--connections=%d" % sc["c"], "--inflight=%d" % sc["k"],
           "--req_size=%d" % sc["req"], "--resp_size=%d" % sc["resp"],
           "--duration=%g" % args.duration, "--warmup=%g" % args.warmup]
    if tls:
        cmd += ["--tls_ca=" + tls["ca"], "--tls_server_name=localhost"]
    return cmd


def run_client(cmd, cpu, timeout):
    full = pinned(cpu, cmd)
    try:
        p = subprocess.run(full, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunFailed("client timed out after %.0f s" % timeout)
    if p.returncode != 0:
        raise RunFailed("client exited %d: %s" %
                        (p.returncode, (p.stderr or p.stdout).strip()[-1500:]))
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise RunFailed("client printed no result line")
    return json.loads(lines[-1])


def make_certs(d):
    """A throw-away CA and a server certificate for localhost/127.0.0.1."""
    ca, ca_key = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    cert, key = os.path.join(d, "server.pem"), os.path.join(d, "server.key")
    csr, ext = os.path.join(d, "server.csr"), os.path.join(d, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "basicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes"]
    for cmd in (
            ["openssl", "req", "-x509"] + ec + ["-keyout", ca_key, "-out", ca,
                                                "-days", "2", "-subj",
                                                "/CN=crpc bench CA"],
            ["openssl", "req"] + ec + ["-keyout", key, "-out", csr, "-subj",
                                       "/CN=localhost"],
            ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey",
             ca_key, "-CAcreateserial", "-out", cert, "-days", "2",
             "-extfile", ext]):
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RunFailed("openssl: " + p.stderr.strip()[-500:])
    return {"ca": ca, "cert": cert, "key": key}


def verify_with_nghttp(tools, port, body_path, want, scheme="http",
                       path=METHOD_PATH):
    """One call with nghttp: h2load counts any HTTP 200 as success, even
    with grpc-status != 0, so check the answer is OK and |want| bytes of
    response frames."""
    cmd = [tools.nghttp, "-v", "-n", "-d", body_path,
           "-H", "content-type: application/grpc", "-H", "te: trailers",
           "%s://127.0.0.1:%d%s" % (scheme, port, path)]
    p = subprocess.run(cmd, capture_output=True, timeout=20)
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0 or ":status: 200" not in out:
        raise RunFailed("nghttp check: no HTTP 200: " + out[-800:])
    m = re.search(r"grpc-status: (\d+)", out)
    if not m or m.group(1) != "0":
        raise RunFailed("nghttp check: grpc-status %s" %
                        (m.group(1) if m else "missing"))
    got = sum(int(x) for x in
              re.findall(r"recv DATA frame <length=(\d+)", out))
    if got != want:
        raise RunFailed("nghttp check: %d response bytes, want %d" %
                        (got, want))


def h2load_cmd(tools, sc, port, body_path, args, scheme="http",
               path=METHOD_PATH):
    return [tools.h2load, "-t", "1", "-c", str(sc["c"]), "-m", str(sc["k"]),
            "-D", "%dms" % round(args.duration * 1000),
            "--warm-up-time=%dms" % round(args.warmup * 1000),
            "-d", body_path, "-H", "content-type: application/grpc",
            "-H", "te: trailers",
            "%s://127.0.0.1:%d%s" % (scheme, port, path)]


def run_h2load(cmd, frame_len, inflight, timeout):
    try:
        p = subprocess.run(pinned(LOAD_CPU, cmd), capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunFailed("h2load timed out")
    out = p.stdout
    if p.returncode != 0:
        raise RunFailed("h2load exited %d: %s" % (p.returncode,
                                                  (p.stderr + out)[-800:]))
    m = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out)
    r = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, "
                  r"(\d+) succeeded, (\d+) failed, (\d+) errored, "
                  r"(\d+) timeout", out)
    s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, "
                  r"(\d+) 5xx", out)
    d = re.search(r"\((\d+)\) data", out)
    if not (m and r and s and d):
        raise RunFailed("cannot parse h2load output: " + out[-800:])
    succeeded, failed, errored, tmo = (int(r.group(i)) for i in (4, 5, 6, 7))
    if succeeded == 0 or failed or errored or tmo:
        raise RunFailed("h2load: %d succeeded, %d failed, %d errored, "
                        "%d timeout" % (succeeded, failed, errored, tmo))
    if any(int(s.group(i)) for i in (2, 3, 4)):
        raise RunFailed("h2load: non-2xx answers: " + s.group(0))
    # h2load counts a status when the response headers arrive but a success
    # when the stream closes, so calls in flight across the end of the
    # warm-up may show on one side only: allow that much difference.
    if abs(int(s.group(1)) - succeeded) > inflight:
        raise RunFailed("h2load: %s 2xx of %d" % (s.group(1), succeeded))
    # A gRPC error is a trailers-only 200 with no DATA: every success must
    # have brought at least one full response frame (the data counter also
    # covers the warm-up, hence >=).
    if int(d.group(1)) < succeeded * frame_len:
        raise RunFailed("h2load: %s response bytes for %d calls: errors "
                        "disguised as 200s?" % (d.group(1), succeeded))
    return {"calls_per_s": float(m.group(1))}


# ---------------------------------------------------------------- driver

class Bench:
    def __init__(self, args, tools):
        self.args = args
        self.tools = tools
        self.results = {}     # (scenario, load, server) -> [dict, ...]
        self.failures = []    # (label, message)
        self.commands = {}    # label -> command line (first repeat)
        self.tmp = tempfile.mkdtemp(prefix="crpc-bench-")
        self.bodies = {}
        self.tls = None

    def certs(self):
        if not self.tls:
            self.tls = make_certs(self.tmp)
        return self.tls

    def body(self, req, resp):
        key = (req, resp)
        if key not in self.bodies:
            path = os.path.join(self.tmp, "req-%d-%d.bin" % key)
            with open(path, "wb") as f:
                f.write(grpc_frame(simple_request(req, resp)))
            self.bodies[key] = path
        return self.bodies[key]

    def greeter_body(self):
        if "greeter" not in self.bodies:
            path = os.path.join(self.tmp, "hello-world.bin")
            with open(path, "wb") as f:
                f.write(grpc_frame(greeter_request()))
            self.bodies["greeter"] = path
        return self.bodies["greeter"]

    def fail(self, label, msg):
        log("  FAILED %s: %s" % (label, msg))
        self.failures.append((label, msg))

    def note_cmd(self, label, cmd):
        if label not in self.commands:
            self.commands[label] = " ".join(shlex.quote(c) for c in cmd)

    def run_pair(self, sc, load, server_kind):
        label = "%s: %s -> %s" % (sc["name"], LOAD_NAMES[load],
                                  SERVER_NAMES[server_kind])
        load_cpu = SERVER_CPU if sc["same_cpu"] else LOAD_CPU
        timeout = self.args.duration + self.args.warmup + 60
        srv = None
        try:
            tls = self.certs() if sc.get("tls") else None
            scheme = "https" if tls else "http"
            srv = Server(server_cmd(self.tools, server_kind, tls), SERVER_CPU,
                         self.tmp)
            self.note_cmd(label + " [server]", srv.cmd)
            cpu0, wall0 = srv.cpu_s(), time.monotonic()
            if load == "h2load":
                if sc.get("service") == "greeter":
                    body, path = self.greeter_body(), GREETER_PATH
                    want = greeter_reply_frame_len()
                else:
                    body, path = self.body(sc["req"], sc["resp"]), METHOD_PATH
                    want = response_frame_len(sc["resp"])
                verify_with_nghttp(self.tools, srv.port, body, want, scheme,
                                   path)
                cmd = h2load_cmd(self.tools, sc, srv.port, body, self.args,
                                 scheme, path)
                self.note_cmd(label, pinned(load_cpu, cmd))
                res = run_h2load(cmd, want, sc["c"] * sc["k"], timeout)
            else:
                cmd = client_cmd(self.tools, load, sc, srv.port, self.args,
                                 tls)
                self.note_cmd(label, pinned(load_cpu, cmd))
                res = run_client(cmd, load_cpu, timeout)
            srv.alive()
            # Over the whole client run, warm-up and connection set-up
            # included: a rough figure, to show whether the server was the
            # bottleneck.
            res["server_cpu"] = ((srv.cpu_s() - cpu0) /
                                 (time.monotonic() - wall0))
            if "mb_per_s" in res:
                res["mib_per_s"] = res["mb_per_s"] * 1e6 / MIB
            elif "calls_per_s" in res:  # h2load: payload bytes both ways
                res["mib_per_s"] = (res["calls_per_s"] *
                                    (sc["req"] + sc["resp"]) / MIB)
            if "calls_per_s" in res and res["server_cpu"] > 0:
                # Robust to CPU time taken by other work on the machine.
                res["calls_per_cpu_s"] = (res["calls_per_s"] /
                                          res["server_cpu"])
            self.results.setdefault((sc["name"], load, server_kind),
                                    []).append(res)
            log("  %-58s %s" % (label, "  ".join(
                "%s=%.2f" % (k, res[k]) for k in sc["metrics"] +
                ["client_cpu", "server_cpu"] if k in res)))
        except RunFailed as e:
            self.fail(label, str(e))
            self.results.setdefault((sc["name"], load, server_kind),
                                    []).append(None)
        finally:
            if srv:
                try:
                    srv.stop()
                except RunFailed as e:
                    self.fail(label, str(e))

    def available(self, load, server_kind):
        return self.tools.has_load(load) and self.tools.has_server(server_kind)

    def run_scenarios(self, selected):
        for rep in range(self.args.repeats):
            for sc in selected:
                log("[%s] repeat %d/%d: %s" % (
                    time.strftime("%H:%M:%S"), rep + 1, self.args.repeats,
                    sc["title"]))
                # each repeat starts at another pair, so that no pair
                # always runs first (a warm or a cold machine) or right
                # after the same neighbour
                pairs = sc["pairs"]
                k = rep % len(pairs)
                for load, server_kind in pairs[k:] + pairs[:k]:
                    if self.available(load, server_kind):
                        self.run_pair(sc, load, server_kind)

    # -- memory: server RSS with idle connections that each made one call
    def run_memory(self):
        pairs = MEMORY_PAIRS
        for rep in range(self.args.repeats):
            log("[%s] repeat %d/%d: memory, %d idle connections" % (
                time.strftime("%H:%M:%S"), rep + 1, self.args.repeats,
                IDLE_CONNECTIONS))
            for load, server_kind in pairs:
                if not self.available(load, server_kind):
                    continue
                label = "memory: %s -> %s" % (LOAD_NAMES[load],
                                              SERVER_NAMES[server_kind])
                key = ("memory", load, server_kind)
                srv = cli = None
                try:
                    srv = Server(server_cmd(self.tools, server_kind),
                                 SERVER_CPU, self.tmp)
                    base = srv.rss_kb()
                    cmd = [self.tools.bin[client_bin(load)],
                           "--target=127.0.0.1:%d" % srv.port, "--rpc=idle",
                           "--connections=%d" % IDLE_CONNECTIONS]
                    self.note_cmd(label + " [server]", srv.cmd)
                    self.note_cmd(label, pinned(LOAD_CPU, cmd))
                    cli = subprocess.Popen(
                        pinned(LOAD_CPU, cmd), stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                    line = read_line(cli, 120, "idle client")
                    if not line.startswith("READY"):
                        raise RunFailed("idle client said %r" % line)
                    srv.alive()
                    rss = srv.rss_kb()
                    res = {"rss_start_kb": base, "rss_idle_kb": rss,
                           "rss_per_conn_kb":
                           (rss - base) / IDLE_CONNECTIONS}
                    self.results.setdefault(key, []).append(res)
                    log("  %-58s start %d KiB, with %d idle %d KiB "
                        "(%.2f KiB/conn)" % (label, base, IDLE_CONNECTIONS,
                                             rss, res["rss_per_conn_kb"]))
                except RunFailed as e:
                    self.fail(label, str(e))
                    self.results.setdefault(key, []).append(None)
                finally:
                    if cli:
                        cli.stdin.close()
                        try:
                            cli.wait(timeout=30)
                        except subprocess.TimeoutExpired:
                            cli.kill()
                            cli.wait()
                        cli.stdout.close()
                        cli.stderr.close()
                    if srv:
                        try:
                            srv.stop()
                        except RunFailed as e:
                            self.fail(label, str(e))

    # -- footprint: library size, helloworld server RSS after start
    def run_footprint(self):
        fp = {}
        if self.tools.libcrpc:
            fp["libcrpc.so"] = self.tools.libcrpc
            fp["libcrpc_bytes"] = os.path.getsize(self.tools.libcrpc)
            stripped = os.path.join(self.tmp, "libcrpc.stripped.so")
            if subprocess.run(["strip", "-o", stripped, self.tools.libcrpc],
                              capture_output=True).returncode == 0:
                fp["libcrpc_stripped_bytes"] = os.path.getsize(stripped)
        libdir = subprocess.run(["pkg-config", "--variable=libdir", "grpc++"],
                                capture_output=True, text=True).stdout.strip()
        arch = subprocess.run(["gcc", "-print-multiarch"],
                              capture_output=True, text=True).stdout.strip()
        dirs = [d for d in (libdir, "/usr/lib/" + arch, "/usr/lib") if d]
        for lib in ("libgrpc++.so", "libgrpc.so"):
            for d in dirs:
                p = os.path.realpath(os.path.join(d, lib))
                if os.path.exists(p):
                    fp[lib + "_bytes"] = os.path.getsize(p)
                    break
        hw = self.tools.bin["helloworld-server"]
        if hw:
            rss = []
            for _ in range(self.args.repeats):
                srv = None
                try:
                    srv = Server([hw, "--port=0"], SERVER_CPU, self.tmp)
                    self.note_cmd("footprint: helloworld-server", srv.cmd)
                    rss.append(srv.rss_kb())
                except RunFailed as e:
                    self.fail("footprint: helloworld-server", str(e))
                finally:
                    if srv:
                        try:
                            srv.stop()
                        except RunFailed as e:
                            self.fail("footprint: helloworld-server", str(e))
            if rss:
                fp["helloworld_rss_kb"] = statistics.median(rss)
        self.footprint = fp

    # -- results
    def values(self, key, field):
        """|field| of every repeat, or None when a repeat failed or lacks
        it."""
        runs = self.results.get(key)
        if not runs or any(r is None or field not in r for r in runs):
            return None
        return [r[field] for r in runs]

    def median(self, key, metric):
        runs = self.results.get(key)
        if runs and any(r is None for r in runs):
            return "FAILED"
        vals = self.values(key, metric)
        return statistics.median(vals) if vals else None

    def spread(self, key, metric):
        """(lowest, highest) over the repeats, or None."""
        vals = self.values(key, metric)
        return (min(vals), max(vals)) if vals else None

    def comparisons(self, sc_name, pairs, metric):
        """Rows (comparison, crpc side, crpc figure, (C++ server, C++
        figure), C++ side, (crpc key, C++ key), Go key): the Go key is
        grpc-go's server under the crpc side's load generator (the own row:
        Go client -> Go server), None when the scenario has no such pair."""
        rows = []
        own_c = self.median((sc_name, "crpc", "crpc"), metric)
        cpp_opts = [(s, self.median((sc_name, "grpcpp", s), metric))
                    for s in ("grpcpp", "grpcpp-cb")
                    if ("grpcpp", s) in pairs]
        best = best_of(cpp_opts, metric)
        rows.append(("own", "crpc client -> crpc server", own_c, best,
                     "C++ client -> " +
                     (SERVER_NAMES[best[0]] if best[0] else "C++"),
                     ((sc_name, "crpc", "crpc"), (sc_name, "grpcpp", best[0])),
                     go_key(sc_name, pairs, "grpcgo")))
        # The crpc client against grpc-go's server: the same load on both
        # servers (there is no crpc client -> C++ server run).
        if ("grpcgo", "grpcgo") in pairs and ("crpc", "grpcgo") in pairs:
            rows.append(("crpc", "crpc client -> crpc server", own_c,
                         (None, None), "-",
                         ((sc_name, "crpc", "crpc"), None),
                         go_key(sc_name, pairs, "crpc")))
        for load in ("grpcpp", "h2load"):
            if (load, "crpc") not in pairs:
                continue
            c = self.median((sc_name, load, "crpc"), metric)
            opts = [(s, self.median((sc_name, load, s), metric))
                    for s in ("grpcpp", "grpcpp-cb") if (load, s) in pairs]
            b = best_of(opts, metric)
            rows.append((load, "%s -> crpc server" % LOAD_NAMES[load], c, b,
                         "%s -> %s" % (LOAD_NAMES[load],
                                       SERVER_NAMES[b[0]] if b[0] else "C++"),
                         ((sc_name, load, "crpc"), (sc_name, load, b[0])),
                         go_key(sc_name, pairs, load)))
        return rows

    def cpu(self, key, field):
        """Median CPUs the client or server kept busy (None: unknown)."""
        vals = self.values(key, field)
        return statistics.median(vals) if vals else None


def go_key(sc_name, pairs, load):
    return (sc_name, load, "grpcgo") if (load, "grpcgo") in pairs else None


def lower_is_better(metric):
    return metric.endswith("_us") or metric.endswith("_kb")


def best_of(opts, metric):
    """The best C++ figure over the server APIs tried: (server, value)."""
    vals = [(s, v) for s, v in opts if isinstance(v, (int, float))]
    if not vals:
        failed = [s for s, v in opts if v == "FAILED"]
        return (failed[0], "FAILED") if failed else (None, None)
    pick = min if lower_is_better(metric) else max
    return pick(vals, key=lambda sv: sv[1])


def fmt(v):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.2f" % v


def ratio(c, g):
    if isinstance(c, (int, float)) and isinstance(g, (int, float)) and g:
        return c / g
    return None


def target_mark(key, r):
    t = TARGETS.get(key)
    if not t:
        return ""
    op, bound = t
    if r is None:
        return "%s %.2g: n/a" % (op, bound)
    ok = r >= bound if op == ">=" else r <= bound
    return "%s %.2g: %s" % (op, bound, "met" if ok else "MISSED")


def cpu_str(v):
    return "-" if v is None else "%.2f" % v


# A load generator this busy (in CPUs) measures itself, not the server.
SATURATED = 0.9


def table_row(bench, title, metric, comp, cside, c, best, gside, keys, key,
              gokey):
    g = best[1]
    cpus = [bench.cpu(k, "client_cpu") for k in keys]
    srv = [bench.cpu(k, "server_cpu") for k in keys]
    go = bench.median(gokey, metric) if gokey else None
    go_srv = bench.cpu(gokey, "server_cpu") if gokey else None
    go_side = ("%s -> Go" % LOAD_NAMES[gokey[1]]) if gokey else "-"
    r = ratio(c, g)
    r_go = ratio(c, go)
    mark = target_mark(key, r)
    if (mark.endswith("MISSED") and comp != "h2load" and
            all(x is not None and x >= SATURATED for x in cpus)):
        mark += " (load generator saturated)"
    line = ("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | "
            "%s / %s / %s | %s |") % (
        title, METRIC_NAMES[metric], cside, fmt(c), gside, fmt(g),
        "%.2f" % r if r is not None else "n/a", go_side, fmt(go),
        "%.2f" % r_go if r_go is not None else "n/a", cpu_str(cpus[0]),
        cpu_str(cpus[1]), cpu_str(srv[0]), cpu_str(srv[1]), cpu_str(go_srv),
        mark)
    return line, r, mark


def build_table(bench, selected):
    lines = ["| scenario | metric | crpc side | crpc | C++ side | C++ | "
             "crpc / C++ | Go side | Go | crpc / Go | client CPUs | "
             "server CPUs (crpc / C++ / Go) | target |",
             "|---|---|---|---:|---|---:|---:|---|---:|---:|---:|---:|---|"]
    summary = []
    for sc in selected:
        if sc.get("service") == "greeter":
            continue  # build_greeter_table()
        for metric in sc["metrics"]:
            for comp, cside, c, best, gside, keys, gokey in \
                    bench.comparisons(sc["name"], sc["pairs"], metric):
                key = (sc["name"], metric, comp)
                line, r, mark = table_row(bench, sc["title"], metric, comp,
                                          cside, c, best, gside, keys, key,
                                          gokey)
                lines.append(line)
                if mark:
                    summary.append((sc["name"], metric, comp, r, mark))
    if any(k[0] == "memory" for k in bench.results):
        metric = "rss_per_conn_kb"
        for comp, cside, c, best, gside, keys, gokey in bench.comparisons(
                "memory", MEMORY_PAIRS, metric):
            key = ("memory", metric, comp)
            line, r, mark = table_row(
                bench, "server RSS, %d idle connections" % IDLE_CONNECTIONS,
                metric, comp, cside, c, best, gside, keys, key, gokey)
            lines.append(line)
            if mark:
                summary.append(("memory", metric, comp, r, mark))
    return lines, summary


# ---------------------------------------------------------------- issue 8

ASYNC_HEADER = [
    "| scenario | metric | callback side | callback | baseline side | "
    "baseline | callback / baseline | C++ side | C++ | callback / C++ | "
    "client CPUs | server CPUs | target |",
    "|---|---|---|---:|---|---:|---:|---|---:|---:|---:|---:|---|"]


def async_comparisons(bench, sc):
    """(comparison, callback key, baseline key, C++ candidates): the
    callback API against the blocking (or reactor-thread) mode it
    replaces, each beside the best C++ figure for the same load."""
    name, pairs = sc["name"], sc["pairs"]
    own_cpp = [(name, "grpcpp", s) for s in ("grpcpp", "grpcpp-cb")
               if ("grpcpp", s) in pairs]
    out = []
    if ("crpc-async", "crpc-async") in pairs:
        out.append(("own", (name, "crpc-async", "crpc-async"),
                    (name, "crpc", "crpc"), own_cpp))
    if ("crpc-sync", "crpc") in pairs:
        out.append(("sync", (name, "crpc-async", "crpc-async"),
                    (name, "crpc-sync", "crpc"), own_cpp))
    if ("crpc-async", "crpc") in pairs:
        out.append(("client", (name, "crpc-async", "crpc"),
                    (name, "crpc", "crpc"), own_cpp))
    if ("crpc", "crpc-async") in pairs:
        out.append(("server", (name, "crpc", "crpc-async"),
                    (name, "crpc", "crpc"), own_cpp))
    if ("h2load", "crpc-async") in pairs:
        out.append(("h2load", (name, "h2load", "crpc-async"),
                    (name, "h2load", "crpc"),
                    [(name, "h2load", s) for s in ("grpcpp", "grpcpp-cb")
                     if ("h2load", s) in pairs]))
    return out


# Issue 8's targets for the callback API: at least as good as the mode it
# replaces on every row, and ping-pong across CPUs 1.5x gRPC C++.
ASYNC_CPP_TARGETS = {("pingpong-cross", "calls_per_s", "own"): 1.5}


def key_side(key):
    return "%s -> %s server" % (LOAD_NAMES[key[1]], SERVER_NAMES[key[2]])


def mark_at_least(r, bound, metric):
    """Whether ratio |r| is at least as good as |bound| (for a latency,
    at most 1/bound)."""
    if r is None:
        return "n/a"
    ok = r <= 1 / bound if lower_is_better(metric) else r >= bound
    return "met" if ok else "MISSED"


def overlap(a, b):
    """Whether ranges |a| and |b| (lowest, highest) share a value."""
    return a[0] <= b[1] and b[0] <= a[1]


def build_async_table(bench, selected):
    lines = list(ASYNC_HEADER)
    summary = []
    for sc in selected:
        for metric in sc["metrics"]:
            for comp, ck, bk, cpp_keys in async_comparisons(bench, sc):
                c, b = bench.median(ck, metric), bench.median(bk, metric)
                best = best_of([(k, bench.median(k, metric))
                                for k in cpp_keys], metric)
                r_base, r_cpp = ratio(c, b), ratio(c, best[1])
                m = mark_at_least(r_base, 1.0, metric)
                cs, bs = bench.spread(ck, metric), bench.spread(bk, metric)
                if m == "MISSED" and cs and bs and overlap(cs, bs):
                    # the medians differ by less than the repeats do
                    m = "MISSED, within the repeat spread (%s-%s vs %s-%s)" % (
                        fmt(cs[0]), fmt(cs[1]), fmt(bs[0]), fmt(bs[1]))
                marks = ["vs baseline %s" % m]
                bound = ASYNC_CPP_TARGETS.get((sc["name"], metric, comp))
                if bound:
                    marks.append("vs C++ >= %.2g: %s" % (
                        bound, mark_at_least(r_cpp, bound, metric)))
                mark = "; ".join(marks)
                summary.append((sc["name"], metric, key_side(ck),
                                key_side(bk), r_base, r_cpp, mark))
                cpus = [bench.cpu(k, "client_cpu") for k in (ck, bk)]
                srv = [bench.cpu(k, "server_cpu") for k in (ck, bk)]
                lines.append(
                    "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | "
                    "%s / %s | %s / %s | %s |" % (
                        sc["title"], METRIC_NAMES[metric], key_side(ck),
                        fmt(c), key_side(bk), fmt(b),
                        "%.2f" % r_base if r_base is not None else "n/a",
                        key_side(best[0]) if best[0] else "C++", fmt(best[1]),
                        "%.2f" % r_cpp if r_cpp is not None else "n/a",
                        cpu_str(cpus[0]), cpu_str(cpus[1]), cpu_str(srv[0]),
                        cpu_str(srv[1]), mark))
    return lines, summary


def build_greeter_table(bench, selected):
    lines = ["| scenario | metric | uv-greeter-server (1 thread) | "
             "helloworld-server (threaded) | uv / threaded | server CPUs "
             "(uv / threaded) | target |",
             "|---|---|---:|---:|---:|---:|---|"]
    summary = []
    for sc in selected:
        if sc.get("service") != "greeter":
            continue
        uk, tk = (sc["name"], "h2load", "uv-greeter"), (sc["name"], "h2load",
                                                       "helloworld")
        for metric in sc["metrics"]:
            u, t = bench.median(uk, metric), bench.median(tk, metric)
            r = ratio(u, t)
            mark = ""
            if metric == "calls_per_cpu_s":
                mark = ">= 1: " + mark_at_least(r, 1.0, metric)
                summary.append((sc["name"], metric, r, mark))
            lines.append("| %s | %s | %s | %s | %s | %s / %s | %s |" % (
                sc["title"], METRIC_NAMES[metric], fmt(u), fmt(t),
                "%.2f" % r if r is not None else "n/a",
                cpu_str(bench.cpu(uk, "server_cpu")),
                cpu_str(bench.cpu(tk, "server_cpu")), mark))
    return lines, summary


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


LOAD_BEFORE = None
# grpcgo-bench-server is built against Debian's grpc-go sources.
GRPCGO_VERSION_GO = "/usr/share/gocode/src/google.golang.org/grpc/version.go"


def machine_info(build_dir):
    info = {"date": datetime.datetime.now().astimezone().strftime(
        "%Y-%m-%d %H:%M %Z"), "nproc": os.cpu_count()}
    try:
        info["nproc"] = int(subprocess.run(["nproc"], capture_output=True,
                                           text=True).stdout)
    except ValueError:
        pass
    with open("/proc/cpuinfo") as f:
        m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
        info["cpu"] = m.group(1) if m else "unknown"
    info["kernel"] = os.uname().release
    info["load_before"] = LOAD_BEFORE
    info["load_after"] = loadavg()
    info["grpc"] = subprocess.run(["pkg-config", "--modversion", "grpc++"],
                                  capture_output=True,
                                  text=True).stdout.strip() or "n/a"
    info["grpcgo"] = "n/a"
    try:
        with open(GRPCGO_VERSION_GO) as f:
            m = re.search(r'Version = "([^"]+)"', f.read())
            info["grpcgo"] = m.group(1) if m else "n/a"
    except OSError:
        pass
    try:
        info["go"] = subprocess.run(["go", "version"], capture_output=True,
                                    text=True).stdout.split()[2]
    except (OSError, IndexError):
        info["go"] = "go n/a"
    info["nghttp2"] = subprocess.run(
        ["pkg-config", "--modversion", "libnghttp2"], capture_output=True,
        text=True).stdout.strip()
    bt = "unknown"
    cache = os.path.join(build_dir, "CMakeCache.txt")
    if os.path.exists(cache):
        with open(cache) as f:
            m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", f.read(), re.M)
            bt = m.group(1) if m else bt
    info["build_type"] = bt
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    info["commit"] = subprocess.run(
        ["git", "-C", src, "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True).stdout.strip() or "unknown"
    return info


def write_results(path, bench, selected, lines, summary, info, argv,
                  elapsed, async_tab, greeter_tab):
    fp = getattr(bench, "footprint", {})
    out = ["# crpc vs gRPC C++ and grpc-go: benchmark results", "",
           "Generated by `bench/run.py`; do not edit by hand (rerun it).", "",
           "- date: %s" % info["date"],
           "- machine: `nproc` = %s, CPU: %s, kernel %s" % (
               info["nproc"], info["cpu"], info["kernel"]),
           "- crpc commit %s, build type %s; gRPC C++ %s (Debian "
           "libgrpc++-dev), grpc-go %s (Debian golang-google-grpc-dev, "
           "%s), nghttp2 %s" % (
               info["commit"], info["build_type"], info["grpc"],
               info["grpcgo"], info["go"], info["nghttp2"]),
           "- run: `%s` (%.1f min): %d repeats, %g s measured after %g s "
           "warm-up; medians shown, each repeat running a scenario's pairs "
           "from another starting pair" % (
               " ".join(shlex.quote(a) for a in argv), elapsed / 60,
               bench.args.repeats, bench.args.duration, bench.args.warmup),
           "- pinning: server on CPU %s (`--threads=1`), load on CPU %s "
           "(same-CPU rows: both on CPU %s)" % (SERVER_CPU, LOAD_CPU,
                                                 SERVER_CPU),
           "- C++ columns show the better of gRPC's completion-queue (cq) "
           "and callback (cb) server APIs for each row; *Go* columns "
           "grpc-go's server (`grpcgo-bench-server --threads=1`: GOMAXPROCS "
           "1): the own row is Go client -> Go server, the other rows the "
           "Go server under the crpc side's load generator; MB/s (10^6 B) and MiB/s count payload "
           "bytes in both directions; *client CPUs* is how many CPUs the bench "
           "client kept busy in the measured window (crpc side / C++ side; "
           "`-` for h2load), *server CPUs* the same for the server over the "
           "whole run, set-up included: near 1.0 that side, pinned to one "
           "CPU, is the bottleneck; *calls per server CPU-s* divides calls/s "
           "by that server figure, which holds up better when other work "
           "takes CPU time from the server (a rough figure: the server's "
           "CPU includes set-up and warm-up)",
           "- load average before / after the run: %s / %s (other work on "
           "the machine skews every figure)" % (info["load_before"],
                                               info["load_after"]), "",
           "## Results", ""] + lines + [""]
    out += ["## Targets", ""]
    if summary:
        for name, metric, comp, r, mark in summary:
            out.append("- %s, %s (%s): ratio %s, target %s" % (
                name, METRIC_NAMES[metric],
                {"own": "crpc<->crpc vs C++<->C++",
                 "grpcpp": "same load: C++ client",
                 "h2load": "same load: h2load"}[comp],
                "%.2f" % r if r is not None else "n/a", mark))
    out += [""]
    alines, asummary = async_tab
    glines, gsummary = greeter_tab
    out += ["## Callback API (issue 8)", "",
            "The callback API on a program-driven loop: `crpc-bench-client "
            "--async` (the client's thread drives a `crpc_loop`: unary "
            "through the generated `__call_async`, ping-pong through "
            "`crpc_call_start_cb` + `crpc_call_write_async`) against "
            "`crpc-bench-server --async` (one `crpc_loop` on the main thread, "
            "NONBLOCKING handlers, no crpc thread). The *baseline* is the "
            "mode it replaces, in this same run: `crpc client -> crpc server` "
            "is the table above's row (unary: async calls completed on crpc's "
            "client reactor thread; streaming: the blocking API; server: one "
            "reactor thread), `--sync` the blocking unary API. *C++* is the "
            "best gRPC C++ figure for the same load (own client and server, "
            "or h2load). CPUs: callback side / baseline side.", ""]
    out += alines + [""]
    out += ["## libuv greeter (issue 8)", "",
            "h2load calls helloworld `SayHello(\"world\")` on "
            "`uv-greeter-server` (libuv, one thread, crpc starts none) and on "
            "`helloworld-server` (crpc's default threaded server: reactor "
            "threads, handler on the worker pool), each pinned to CPU %s; "
            "*calls per server CPU-s* as above." % SERVER_CPU, ""]
    out += glines + [""]
    out += ["## Targets (issue 8)", ""]
    for name, metric, cside, bside, rb, rc, mark in asummary:
        out.append("- %s, %s: %s vs %s: %s, vs C++ %s: %s" % (
            name, METRIC_NAMES[metric], cside, bside,
            "%.2f" % rb if rb is not None else "n/a",
            "%.2f" % rc if rc is not None else "n/a", mark))
    for name, metric, r, mark in gsummary:
        out.append("- %s, %s: uv-greeter-server / helloworld-server %s, "
                   "target %s" % (name, METRIC_NAMES[metric],
                                  "%.2f" % r if r is not None else "n/a",
                                  mark))
    out += [""]
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "NOTES.md")
    if os.path.exists(notes):
        with open(notes) as f:
            out += ["## Analysis (bench/NOTES.md, written by hand: check its "
                    "date against this run's)", "", f.read().strip(), ""]
    out += ["## Footprint", ""]
    if fp.get("libcrpc_bytes"):
        out.append("- libcrpc.so (`%s`): %d bytes as built, %s bytes "
                   "stripped" % (os.path.basename(fp["libcrpc.so"]),
                                 fp["libcrpc_bytes"],
                                 fp.get("libcrpc_stripped_bytes", "n/a")))
    else:
        out.append("- libcrpc.so: not found in the build tree")
    for lib in ("libgrpc++.so", "libgrpc.so"):
        if fp.get(lib + "_bytes"):
            out.append("- for scale, Debian's %s: %d bytes (stripped)" %
                       (lib, fp[lib + "_bytes"]))
    if fp.get("helloworld_rss_kb"):
        out.append("- helloworld-server RSS after start: %d KiB (median)" %
                   fp["helloworld_rss_kb"])
    else:
        out.append("- helloworld-server: not built")
    mem = [(k, bench.median(k, "rss_start_kb"), bench.median(k, "rss_idle_kb"))
           for k in sorted(bench.results) if k[0] == "memory"]
    for k, s, i in mem:
        out.append("- %s -> %s: server RSS %s KiB after start, %s KiB with "
                   "%d idle connections" % (LOAD_NAMES[k[1]],
                                            SERVER_NAMES[k[2]], fmt(s),
                                            fmt(i), IDLE_CONNECTIONS))
    out += [""]
    if bench.failures:
        out += ["## Failed runs", ""]
        for label, msg in bench.failures:
            out.append("- %s: `%s`" % (label, msg.replace("`", "'")[:400]))
        out += [""]
    out += ["## Commands", "",
            "Ports are picked by the servers (`--port=0`); `PORT` below is "
            "the one the server printed.", "", "```"]
    for label in sorted(bench.commands):
        cmd = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT",
                     bench.commands[label])
        cmd = cmd.replace(bench.tmp + "/", "")
        out.append("# " + label)
        out.append(cmd)
    out += ["```", "",
            "`req-R-S.bin` is a gRPC-framed SimpleRequest (5-byte prefix, "
            "then response_size = S and a payload of R zero bytes), written "
            "by run.py, `hello-world.bin` a gRPC-framed HelloRequest{name = "
            "\"world\"}; TLS rows use a throw-away CA (`ca.pem`) and a P-256 "
            "server certificate for localhost made with `openssl`; each h2load run is preceded by one `nghttp` call "
            "that checks `grpc-status: 0` and the response size, because "
            "h2load counts any HTTP 200 as a success.", ""]
    with open(path, "w") as f:
        f.write("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", required=True,
                    help="a built crpc tree (cmake -B DIR)")
    ap.add_argument("--duration", type=float, default=3.0,
                    help="measured seconds per run (default 3)")
    ap.add_argument("--warmup", type=float, default=0.5,
                    help="warm-up seconds per run (default 0.5)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs per pair and scenario (default 3)")
    ap.add_argument("--only", default="",
                    help="comma-separated scenario name prefixes, plus "
                    "'memory' and 'footprint'")
    ap.add_argument("--results", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"),
        help="where to write the Markdown results")
    ap.add_argument("--no-write", action="store_true",
                    help="print the table, do not write RESULTS.md")
    args = ap.parse_args()
    if args.duration <= 0 or args.warmup < 0 or args.repeats < 1:
        ap.error("--duration must be > 0, --warmup >= 0, --repeats >= 1")
    if not os.path.isdir(args.build_dir):
        ap.error("--build-dir %s: not a directory" % args.build_dir)
    if os.cpu_count() < 2:
        ap.error("needs two CPUs (server and load are pinned apart)")
    if not shutil.which("taskset"):
        ap.error("needs taskset (util-linux)")

    global LOAD_BEFORE
    LOAD_BEFORE = loadavg()
    if float(LOAD_BEFORE.split()[0]) > 0.5:
        log("warning: load average %s: other work on this machine will "
            "skew the figures" % LOAD_BEFORE)
    tools = Tools(args.build_dir)
    missing = [n for n, p in tools.bin.items() if not p]
    if missing:
        log("not built (their rows show n/a): " + ", ".join(missing))
    if not (tools.h2load and tools.nghttp):
        log("h2load/nghttp not found (Debian: nghttp2-client): h2load rows "
            "show n/a")
    if not tools.has_server("crpc") and not tools.has_server("grpcpp"):
        log("no benchmark server in %s: build the crpc-bench-server or "
            "grpcpp-bench-server target first" % args.build_dir)
        return 2

    only = [s for s in args.only.split(",") if s]
    selected = [sc for sc in scenarios()
                if not only or any(sc["name"].startswith(o) for o in only)]
    bench = Bench(args, tools)
    t0 = time.monotonic()
    try:
        bench.run_scenarios(selected)
        if not only or "memory" in only:
            bench.run_memory()
        if not only or "footprint" in only:
            bench.run_footprint()
    finally:
        elapsed = time.monotonic() - t0
    lines, summary = build_table(bench, selected)
    async_tab = build_async_table(bench, selected)
    greeter_tab = build_greeter_table(bench, selected)
    print("\n".join(lines))
    print("\n".join(async_tab[0]))
    print("\n".join(greeter_tab[0]))
    for name, metric, comp, r, mark in summary:
        print("target %-22s %-9s %-7s ratio %-6s %s" % (
            name, METRIC_NAMES[metric], comp,
            "%.2f" % r if r is not None else "n/a", mark))
    for name, metric, cside, bside, rb, rc, mark in async_tab[1]:
        print("issue 8 %-18s %-9s %s vs %s: %s, vs C++ %s: %s" % (
            name, METRIC_NAMES[metric], cside, bside,
            "%.2f" % rb if rb is not None else "n/a",
            "%.2f" % rc if rc is not None else "n/a", mark))
    for name, metric, r, mark in greeter_tab[1]:
        print("issue 8 %-18s %-9s uv / threaded %s: %s" % (
            name, METRIC_NAMES[metric], "%.2f" % r if r is not None
            else "n/a", mark))
    print("elapsed %.1f min" % (elapsed / 60))
    if not args.no_write:
        write_results(args.results, bench, selected, lines, summary,
                      machine_info(args.build_dir), sys.argv, elapsed,
                      async_tab, greeter_tab)
        log("wrote " + args.results)
    shutil.rmtree(bench.tmp, ignore_errors=True)
    if bench.failures:
        log("%d run(s) FAILED:" % len(bench.failures))
        for label, msg in bench.failures:
            log("  %s: %s" % (label, msg))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
