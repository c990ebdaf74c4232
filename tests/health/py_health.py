#!/usr/bin/python3
"""gRPC Python (grpcio) against crpc's built-in grpc.health.v1.Health.

  py_health.py --stubs=DIR --server=PATH/health-test-server

Starts the crpc server (health_server.c), which prints its port and then
takes commands on stdin ("set SERVICE STATUS", "watchers N", "shutdown"),
so every status change happens when this script says, and every wait is
for a message or an answer, never for a guessed time. Then, with grpcio:
Check, Watch (initial status, each change, unknown then known, cancel),
gRPC core's own client-side health checking (round_robin with
healthCheckConfig, which Watches the server), and crpc_health_shutdown
ending the Watch calls. The server must exit 0 at the end (under ASan: no
leaks). Exits 0 on success.
"""

import json
import os
import select
import subprocess
import sys
import time

TIMEOUT = 30.0


def log(msg):
    print("py_health: " + msg, flush=True)


def fail(msg):
    log("FAIL: " + msg)
    sys.exit(1)


def expect(what, got, want):
    if got != want:
        fail("%s: got %r, want %r" % (what, got, want))
    log("%s: %r" % (what, got))


class Server:
    """The crpc server process and its command pipe."""

    def __init__(self, path):
        self.p = subprocess.Popen([path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, bufsize=0)
        self.buf = b""
        line = self.readline()
        if not line.startswith("listening on "):
            fail("server said %r" % line)
        self.target = line[len("listening on "):]
        log("server at " + self.target)

    def readline(self):
        deadline = time.monotonic() + TIMEOUT
        fd = self.p.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                fail("the server did not answer in time")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    fail("the server exited (rc=%s)" % self.p.wait())
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def cmd(self, text):
        self.p.stdin.write((text + "\n").encode())
        answer = self.readline()
        if not answer.startswith("ok"):
            fail("server command %r: %s" % (text, answer))
        return answer

    def close(self):
        self.p.stdin.close()
        try:
            rc = self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            fail("the server did not exit after EOF")
        expect("server exit code", rc, 0)


def main():
    stubs = server_path = None
    for a in sys.argv[1:]:
        if a.startswith("--stubs="):
            stubs = a[len("--stubs="):]
        elif a.startswith("--server="):
            server_path = a[len("--server="):]
        else:
            sys.exit("unknown argument " + a)
    if not stubs or not server_path:
        sys.exit("usage: py_health.py --stubs=DIR --server=PATH")
    sys.path.insert(0, stubs)
    import grpc
    import health_pb2 as pb
    import health_pb2_grpc as pb_grpc

    S = pb.HealthCheckResponse
    srv = Server(server_path)
    ch = grpc.insecure_channel(srv.target)
    stub = pb_grpc.HealthStub(ch)

    def check(service, channel_stub=stub, **kw):
        return channel_stub.Check(pb.HealthCheckRequest(service=service),
                                  timeout=TIMEOUT, **kw).status

    # Check: the whole server, an unknown service, a known one.
    expect("Check('')", check(""), S.SERVING)
    try:
        check("grpc.test.Nope")
        fail("Check of an unknown service succeeded")
    except grpc.RpcError as e:
        expect("Check(unknown) code", e.code(), grpc.StatusCode.NOT_FOUND)
        expect("Check(unknown) details", e.details(), "unknown service")
    srv.cmd("set grpc.test.Svc SERVING")
    expect("Check(Svc)", check("grpc.test.Svc"), S.SERVING)
    srv.cmd("set - NOT_SERVING")
    expect("Check('') after set", check(""), S.NOT_SERVING)
    srv.cmd("set - SERVING")

    # Watch: the status at once, then each change.
    w1 = stub.Watch(pb.HealthCheckRequest(service="grpc.test.Svc"),
                    timeout=TIMEOUT)
    expect("Watch(Svc) initial", next(w1).status, S.SERVING)
    srv.cmd("set grpc.test.Svc NOT_SERVING")
    expect("Watch(Svc) change 1", next(w1).status, S.NOT_SERVING)
    srv.cmd("set grpc.test.Svc SERVING")
    expect("Watch(Svc) change 2", next(w1).status, S.SERVING)

    # Watch of an unknown service: SERVICE_UNKNOWN, then its status.
    w2 = stub.Watch(pb.HealthCheckRequest(service="grpc.test.Later"),
                    timeout=TIMEOUT)
    expect("Watch(Later) initial", next(w2).status, S.SERVICE_UNKNOWN)
    srv.cmd("set grpc.test.Later SERVING")
    expect("Watch(Later) once set", next(w2).status, S.SERVING)

    # Cancelling a Watch ends its handler on the server.
    srv.cmd("watchers 2")
    w2.cancel()
    srv.cmd("watchers 1")
    log("cancelled Watch ended on the server")

    # gRPC core's client-side health checking Watches the server and only
    # sends RPCs to it while the named service is SERVING.
    srv.cmd("set grpc.test.Lb NOT_SERVING")
    cfg = {"loadBalancingConfig": [{"round_robin": {}}],
           "healthCheckConfig": {"serviceName": "grpc.test.Lb"}}
    lb = grpc.insecure_channel(
        srv.target, options=[("grpc.service_config", json.dumps(cfg))])
    lb_stub = pb_grpc.HealthStub(lb)
    try:
        check("", lb_stub)
        fail("an RPC went through while the backend was NOT_SERVING")
    except grpc.RpcError as e:
        expect("RPC on a NOT_SERVING backend", e.code(),
               grpc.StatusCode.UNAVAILABLE)
        log("  (%s)" % e.details())
    srv.cmd("watchers 2")  # w1 and gRPC core's health watch
    srv.cmd("set grpc.test.Lb SERVING")
    expect("RPC once SERVING (wait_for_ready)",
           check("", lb_stub, wait_for_ready=True), S.SERVING)
    lb.close()
    srv.cmd("watchers 1")
    log("client-side health checking followed the server")

    # crpc_health_shutdown: NOT_SERVING, then the Watch ends UNAVAILABLE.
    srv.cmd("shutdown")
    expect("Watch(Svc) at shutdown", next(w1).status, S.NOT_SERVING)
    try:
        next(w1)
        fail("the Watch went on after crpc_health_shutdown")
    except grpc.RpcError as e:
        expect("Watch end code", e.code(), grpc.StatusCode.UNAVAILABLE)
    except StopIteration:
        fail("the Watch ended OK after crpc_health_shutdown")
    srv.cmd("watchers 0")
    expect("Check('') after shutdown", check(""), S.NOT_SERVING)
    ch.close()
    srv.close()
    log("PASS")


if __name__ == "__main__":
    main()
