"""crpc on the program's own loop, seen from outside (issue 8).

  loop_servers.py --stubs=DIR --server=BIN [--upstream-of=BIN]
                  [--uv-client=BIN] [--cpp-client=BIN]

Starts the single-threaded greeter server BIN (uv-greeter-server,
event-greeter-server or epoll-greeter-server) on port 0, checks in /proc
that it runs exactly one thread, has grpcio (and with --cpp-client, gRPC
C++) call it (many calls at once),
checks the thread count again, and stops it with SIGTERM (exit 0).
--upstream-of=BIN also starts BIN --upstream=<the first server> and calls
through it (a handler calling another service on the same loop).
--uv-client=BIN has that crpc client call a grpcio Greeter server.
"""

import argparse
import os
import subprocess
import sys
import time
from concurrent import futures

import grpc

TIMEOUT = 20.0


def start(argv):
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # "... listening on 127.0.0.1:PORT"
    if "listening on" not in line:
        proc.kill()
        sys.exit("%s did not start: %r" % (argv[0], line))
    return proc, int(line.strip().rsplit(":", 1)[1])


def threads(proc):
    return len(os.listdir("/proc/%d/task" % proc.pid))


def expect(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)
    print("PASS " + what, flush=True)


def call_many(pb2, pb2_grpc, port, n, prefix=""):
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        stub = pb2_grpc.GreeterStub(ch)
        calls = [stub.SayHello.future(pb2.HelloRequest(name="n%d" % i),
                                      timeout=TIMEOUT) for i in range(n)]
        got = [c.result().message for c in calls]
    want = ["Hello %sn%d" % (prefix, i) for i in range(n)]
    return got == want, got[:3]


def stop(proc, name):
    proc.terminate()
    rc = proc.wait(timeout=TIMEOUT)
    expect(rc == 0, "%s exits 0 on SIGTERM (got %d)" % (name, rc))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stubs", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--upstream-of")
    ap.add_argument("--uv-client")
    ap.add_argument("--cpp-client")
    a = ap.parse_args()
    sys.path.insert(0, a.stubs)
    import helloworld_pb2 as pb2
    import helloworld_pb2_grpc as pb2_grpc

    name = os.path.basename(a.server)
    srv, port = start([a.server, "--port=0"])
    try:
        expect(threads(srv) == 1, "%s runs one thread" % name)
        ok, sample = call_many(pb2, pb2_grpc, port, 50)
        expect(ok, "grpcio: 50 concurrent SayHello to %s (%s)" % (name, sample))
        if a.cpp_client:
            out = subprocess.run([a.cpp_client, "--target=127.0.0.1:%d" % port,
                                  "--name=cpp", "--count=20"],
                                 capture_output=True, text=True,
                                 timeout=TIMEOUT)
            expect(out.returncode == 0 and
                   out.stdout.strip() == "Greeter received: Hello cpp",
                   "gRPC C++: 20 concurrent SayHello to %s (%r %r)"
                   % (name, out.stdout.strip(), out.stderr.strip()[-200:]))
        expect(threads(srv) == 1, "%s still one thread after the calls" % name)
        if a.upstream_of:
            fwd, fport = start([a.upstream_of, "--port=0",
                                "--upstream=127.0.0.1:%d" % port])
            try:
                ok, sample = call_many(pb2, pb2_grpc, fport, 20)
                expect(ok, "grpcio through a handler that calls %s on its "
                       "own loop (%s)" % (name, sample))
                expect(threads(fwd) == 1, "the forwarding server runs one "
                       "thread")
            finally:
                stop(fwd, "the forwarding server")
    finally:
        stop(srv, name)

    if a.uv_client:
        class Greeter(pb2_grpc.GreeterServicer):
            def SayHello(self, request, context):
                return pb2.HelloReply(message="Hello " + request.name)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
        pport = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            out = subprocess.run([a.uv_client, "--target=127.0.0.1:%d" % pport,
                                  "--name=uv"], capture_output=True,
                                 text=True, timeout=TIMEOUT)
            expect(out.returncode == 0 and
                   out.stdout.strip() == "Greeter received: Hello uv",
                   "uv-greeter-client calls a grpcio server (%r)"
                   % out.stdout.strip())
        finally:
            server.stop(None)


if __name__ == "__main__":
    main()
