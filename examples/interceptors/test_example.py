"""The interceptors example against itself and against grpcio.

interceptors-server (bearer-token check) called by interceptors-client and
by a grpcio client (Debian's python3-grpcio), each with the right token, a
wrong one and none: OK, then UNAUTHENTICATED twice.

  test_example.py --server=PATH --client=PATH
"""
import argparse
import subprocess
import sys

import grpc

TOKEN = "s3cret"
# helloworld.HelloRequest{name: "py"} and the reply's field 1, by hand: no
# stubs needed.
REQUEST = b"\x0a\x02py"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--client", required=True)
    a = ap.parse_args()
    srv = subprocess.Popen([a.server, "--port=0", "--token=" + TOKEN],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        line = srv.stdout.readline().strip()
        assert line.startswith("crpc interceptors server listening on "), line
        target = line.rsplit(" ", 1)[1]

        def crpc_client(*extra):
            return subprocess.run([a.client, "--target=" + target] +
                                  list(extra), capture_output=True,
                                  text=True, timeout=60)

        r = crpc_client("--token=" + TOKEN, "--name=c")
        assert r.returncode == 0 and "Hello c" in r.stdout, r
        for extra in (["--token=wrong"], []):
            r = crpc_client(*extra)
            assert r.returncode == 1, r
            assert r.stderr.startswith("UNAUTHENTICATED"), r.stderr

        with grpc.insecure_channel(target) as ch:
            say = ch.unary_unary("/helloworld.Greeter/SayHello")
            reply = say(REQUEST, timeout=30,
                        metadata=[("authorization", "Bearer " + TOKEN)])
            assert reply == b"\x0a\x08Hello py", reply
            for md in ([("authorization", "Bearer nope")], []):
                try:
                    say(REQUEST, timeout=30, metadata=md)
                    raise AssertionError("call without a valid token "
                                         "succeeded")
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
                    assert "bearer token" in e.details(), e.details()
    finally:
        srv.terminate()
        _, err = srv.communicate(timeout=30)
    # the logging interceptor (outermost) saw every call, refused or not
    assert err.count("done /helloworld.Greeter/SayHello: OK") == 2, err
    assert err.count("UNAUTHENTICATED") == 4, err
    assert srv.returncode == 0, srv.returncode
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
