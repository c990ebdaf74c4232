#!/usr/bin/python3
"""TLS and mutual-TLS interop between crpc and Python grpcio, both ways.

  tls_interop.py --certs DIR --pydir DIR --tls-server BIN --tls-client BIN
                 [--plain-server BIN] [--plain-client BIN]

DIR holds the PKI of make_test_certs.sh; --pydir the helloworld_pb2 /
helloworld_pb2_grpc modules. The crpc side is examples/tls's
tls-greeter-server / tls-greeter-client (and examples/helloworld's clear-text
ones for the mixed cases); the Python side runs in this process.

Each case prints PASS or FAIL with what happened; the exit status is the
number of failures. Every wait is bounded.
"""
import argparse
import concurrent.futures
import os
import subprocess
import sys

TMO = 15  # seconds: any wait longer than this is a failure

args = None
failures = 0


def check(name, ok, detail=""):
    global failures
    print("%s %s%s" % ("PASS" if ok else "FAIL", name,
                       (": " + detail) if detail else ""), flush=True)
    if not ok:
        failures += 1


def cert(name):
    return os.path.join(args.certs, name)


def read(name):
    with open(cert(name), "rb") as f:
        return f.read()


# ---- Python client -> crpc server ----

class CrpcServer:
    """A crpc server process; .port is the port it listens on."""

    def __init__(self, binary, *flags):
        self.proc = subprocess.Popen([binary, "--port=0"] + list(flags),
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.stop()
            raise RuntimeError("server did not start: %r %s" %
                               (line, self.proc.stderr.read()))
        self.port = int(line.strip().rsplit(":", 1)[1])

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.communicate(timeout=TMO)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def py_call(port, ca="ca.pem", cert_name="client", host="localhost",
            override=None, token="good", secure=True):
    """One SayHello from grpcio; returns (code, details, trailers)."""
    import grpc
    import helloworld_pb2
    import helloworld_pb2_grpc
    options = []
    if override:
        options.append(("grpc.ssl_target_name_override", override))
    target = "%s:%d" % (host, port)
    if secure:
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(ca),
            private_key=read(cert_name + ".key") if cert_name else None,
            certificate_chain=read(cert_name + ".pem") if cert_name else None)
        channel = grpc.secure_channel(target, creds, options)
    else:
        channel = grpc.insecure_channel(target, options)
    md = [("authorization", token if " " in token else "Bearer " + token)]
    try:
        stub = helloworld_pb2_grpc.GreeterStub(channel)
        reply, call = stub.SayHello.with_call(
            helloworld_pb2.HelloRequest(name="py"), timeout=TMO, metadata=md)
        if reply.message != "Hello py":
            return (None, "bad reply %r" % reply.message, {})
        return (grpc.StatusCode.OK, "", dict(call.trailing_metadata()))
    except grpc.RpcError as e:
        return (e.code(), e.details(), {})
    finally:
        channel.close()


def python_client_to_crpc_server():
    import grpc
    S = grpc.StatusCode
    srv = args.tls_server
    flags = ["--certs=" + args.certs, "--client_auth=require",
             "--allow=spiffe://crpc.test/", "--token=good"]
    with CrpcServer(srv, *flags) as s:
        code, det, tr = py_call(s.port)
        check("py->crpc mTLS + bearer token", code == S.OK and
              tr.get("x-client-subject") == "CN=greeter-client,O=crpc test",
              "%s %s %s" % (code, det, tr))
        code, det, _ = py_call(s.port, host="127.0.0.1")
        check("py->crpc by IP address (IP SAN)", code == S.OK, str(code))
        code, det, _ = py_call(s.port, cert_name=None)
        check("py->crpc without a client certificate: UNAVAILABLE",
              code == S.UNAVAILABLE, "%s %s" % (code, det))
        code, det, _ = py_call(s.port, cert_name="other_client")
        check("py->crpc client cert from another CA: UNAVAILABLE",
              code == S.UNAVAILABLE, "%s %s" % (code, det))
        code, det, _ = py_call(s.port, cert_name="alice")
        check("py->crpc another allowed SPIFFE ID: OK",
              code == S.OK, "%s %s" % (code, det))
        code, det, _ = py_call(s.port, cert_name="wronghost_server")
        check("py->crpc identity the auth hook refuses: PERMISSION_DENIED",
              code == S.PERMISSION_DENIED, "%s %s" % (code, det))
        code, det, _ = py_call(s.port, token="Basic Zm9vOmJhcg==")
        check("py->crpc malformed authorization: UNAUTHENTICATED",
              code == S.UNAUTHENTICATED and "bearer" in det,
              "%s %s" % (code, det))
        code, det, _ = py_call(s.port, token="wrong")
        check("py->crpc wrong token: UNAUTHENTICATED",
              code == S.UNAUTHENTICATED, "%s %s" % (code, det))
        code, det, _ = py_call(s.port, ca="other_ca.pem")
        check("py->crpc server cert from an untrusted CA: UNAVAILABLE",
              code == S.UNAVAILABLE, "%s %s" % (code, det))
        code, det, _ = py_call(s.port, secure=False)
        check("py clear text -> crpc TLS port: UNAVAILABLE",
              code == S.UNAVAILABLE, "%s %s" % (code, det))
    with CrpcServer(srv, "--certs=" + args.certs,
                    "--cert=" + cert("expired_server.pem"),
                    "--key=" + cert("expired_server.key"),
                    "--client_auth=none") as s:
        code, det, _ = py_call(s.port)
        check("py->crpc expired server certificate: UNAVAILABLE",
              code == S.UNAVAILABLE, "%s %s" % (code, det))
    with CrpcServer(srv, "--certs=" + args.certs,
                    "--cert=" + cert("wronghost_server.pem"),
                    "--key=" + cert("wronghost_server.key")) as s:
        code, det, _ = py_call(s.port)
        check("py->crpc hostname mismatch: UNAVAILABLE",
              code == S.UNAVAILABLE, "%s %s" % (code, det))
        code, det, _ = py_call(s.port, override="wrong.example")
        check("py->crpc with ssl_target_name_override: OK", code == S.OK,
              "%s %s" % (code, det))
    if args.plain_server:
        with CrpcServer(args.plain_server) as s:
            code, det, _ = py_call(s.port)
            check("py TLS -> crpc clear-text port: UNAVAILABLE",
                  code == S.UNAVAILABLE, "%s %s" % (code, det))


# ---- crpc client -> Python server ----

def py_server(cert_name="server", client_auth=True, secure=True):
    import grpc
    import helloworld_pb2
    import helloworld_pb2_grpc

    class Greeter(helloworld_pb2_grpc.GreeterServicer):
        def SayHello(self, request, context):
            md = dict(context.invocation_metadata())
            if md.get("authorization") != "Bearer good":
                context.abort(grpc.StatusCode.UNAUTHENTICATED,
                              "missing or malformed bearer token")
            cn = context.auth_context().get("x509_common_name", [b""])[0]
            context.set_trailing_metadata(
                [("x-client-subject", "CN=" + cn.decode())])
            return helloworld_pb2.HelloReply(message="Hello " + request.name)

    server = grpc.server(concurrent.futures.ThreadPoolExecutor(4))
    helloworld_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    if secure:
        creds = grpc.ssl_server_credentials(
            [(read(cert_name + ".key"), read(cert_name + ".pem"))],
            root_certificates=read("ca.pem"),
            require_client_auth=client_auth)
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def crpc_client(binary, *flags):
    p = subprocess.run([binary] + list(flags), capture_output=True,
                       text=True, timeout=TMO)
    return p.returncode, p.stdout + p.stderr


def crpc_client_to_python_server():
    cli = args.tls_client
    base = ["--certs=" + args.certs, "--name=crpc"]
    server, port = py_server()
    try:
        t = "--target=localhost:%d" % port
        rc, out = crpc_client(cli, t, "--token=good", *base)
        check("crpc->py mTLS + bearer token", rc == 0 and
              "Hello crpc" in out and "CN=greeter-client" in out, out)
        rc, out = crpc_client(cli, "--target=127.0.0.1:%d" % port,
                              "--token=good", *base)
        check("crpc->py by IP address", rc == 0, out)
        rc, out = crpc_client(cli, t, "--token=good", "--no_client_cert",
                              *base)
        check("crpc->py without a client certificate: UNAVAILABLE",
              rc == 1 and "UNAVAILABLE" in out, out)
        rc, out = crpc_client(cli, t, "--token=good",
                              "--cert=" + cert("other_client.pem"),
                              "--key=" + cert("other_client.key"), *base)
        check("crpc->py client cert from another CA: UNAVAILABLE",
              rc == 1 and "UNAVAILABLE" in out, out)
        rc, out = crpc_client(cli, t, "--token=bad", *base)
        check("crpc->py wrong token: UNAUTHENTICATED",
              rc == 1 and "UNAUTHENTICATED" in out, out)
        rc, out = crpc_client(cli, t, *base)
        check("crpc->py no token: UNAUTHENTICATED",
              rc == 1 and "UNAUTHENTICATED" in out, out)
        rc, out = crpc_client(cli, t, "--token=good",
                              "--ca=" + cert("other_ca.pem"), *base)
        check("crpc->py server cert from an untrusted CA: UNAVAILABLE",
              rc == 1 and "certificate verify failed" in out, out)
        if args.plain_client:
            rc, out = crpc_client(args.plain_client, t)
            check("crpc clear text -> py TLS port: UNAVAILABLE",
                  rc == 1 and "UNAVAILABLE" in out, out)
    finally:
        server.stop(None)

    for name, needle in (("expired_server", "expired"),
                         ("wronghost_server", "hostname mismatch")):
        server, port = py_server(name, client_auth=False)
        try:
            rc, out = crpc_client(cli, "--target=localhost:%d" % port,
                                  "--token=good", *base)
            check("crpc->py %s: UNAVAILABLE" % name,
                  rc == 1 and needle in out, out)
            if name == "wronghost_server":
                rc, out = crpc_client(cli, "--target=localhost:%d" % port,
                                      "--server_name=wrong.example",
                                      "--token=good", *base)
                check("crpc->py with --server_name override: OK", rc == 0,
                      out)
        finally:
            server.stop(None)

    server, port = py_server(secure=False)
    try:
        rc, out = crpc_client(cli, "--target=localhost:%d" % port,
                              "--token=good", *base)
        check("crpc TLS -> py clear-text port: UNAVAILABLE",
              rc == 1 and "does not speak TLS" in out, out)
    finally:
        server.stop(None)


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--certs", required=True)
    p.add_argument("--pydir", required=True)
    p.add_argument("--tls-server", required=True)
    p.add_argument("--tls-client", required=True)
    p.add_argument("--plain-server")
    p.add_argument("--plain-client")
    args = p.parse_args()
    sys.path.insert(0, args.pydir)
    # This process forks crpc programs while grpcio threads run; gRPC's
    # fork handlers are for fork() without exec() and only get in the way.
    os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"
    python_client_to_crpc_server()
    crpc_client_to_python_server()
    print("%d failure(s)" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
