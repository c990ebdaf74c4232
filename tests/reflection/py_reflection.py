#!/usr/bin/python3
"""A grpcurl-like client in gRPC Python against crpc's server reflection.

For each server (crpc-interop-server, route-guide-server, helloworld-server
and refl-test-server, whose proto imports well-known types and declares
extensions), over v1 and over v1alpha:
  - lists the services;
  - describes every one: the files that define them and, through
    file_by_filename, every file those import, transitively, into an empty
    google.protobuf.descriptor_pool.DescriptorPool (nothing comes from the
    client's own generated code);
  - calls one method with a request built only from the reflected
    descriptors (a message class made from the pool) and checks the answer.
Then the bad inputs: unknown symbols and files, an empty name, a 64 KiB
name, file names with "..", extension queries, a request with no kind,
many requests on one stream answered in order, a stream whose client never
reads (the server must keep serving others), and --reflection=false.

grpcio's own grpc_reflection package is not in Debian's python3-grpcio,
so the stubs are raw ones, generated from gRPC's reflection protos.

  py_reflection.py --stubs=DIR --interop=BIN --route-guide=BIN
                   --helloworld=BIN --refl-server=BIN
"""
import argparse
import re
import subprocess
import sys
import threading
import time

PORT_LINE = re.compile(r"(?:listening on \S+:)?(\d+)\s*$")
TIMEOUT = 20  # seconds for any one RPC: a hang fails, it never waits on


def log(msg):
    print(msg, flush=True)


def fail(msg):
    log("FAIL: " + msg)
    sys.exit(1)


def expect(what, got, want):
    if got != want:
        fail("%s: got %r, want %r" % (what, got, want))


class Server:
    """A server process that prints its port on its first line."""

    def __init__(self, argv, stop_by_stdin):
        self.stop_by_stdin = stop_by_stdin
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        m = PORT_LINE.search(line)
        if not m:
            self.p.kill()
            fail("%s printed %r, not its port" % (argv[0], line))
        self.addr = "127.0.0.1:%s" % m.group(1)

    def close(self):
        if self.stop_by_stdin:
            self.p.stdin.close()
        else:
            self.p.terminate()
        rc = self.p.wait(timeout=30)
        if rc != 0:
            fail("server exited with %d" % rc)


class Reflector:
    """One version's stub; each ask() is one stream."""

    def __init__(self, channel, pb, pbg, version):
        self.pb = pb
        self.stub = pbg.ServerReflectionStub(channel)
        self.version = version

    def ask(self, reqs):
        resps = list(self.stub.ServerReflectionInfo(iter(reqs),
                                                    timeout=TIMEOUT))
        expect("%s responses" % self.version, len(resps), len(reqs))
        for q, r in zip(reqs, resps):
            expect("%s original_request" % self.version, r.original_request, q)
        return resps

    def one(self, **kw):
        return self.ask([self.pb.ServerReflectionRequest(**kw)])[0]

    def files(self, **kw):
        r = self.one(**kw)
        kind = r.WhichOneof("message_response")
        if kind != "file_descriptor_response":
            fail("%s %r: %s %s" % (self.version, kw, kind, r))
        return [parse_file(b) for b in
                r.file_descriptor_response.file_descriptor_proto]

    def error(self, what, want_code=5, **kw):
        r = self.one(**kw)
        expect(what + " (%s) answer" % self.version,
               r.WhichOneof("message_response"), "error_response")
        expect(what + " code", r.error_response.error_code, want_code)
        if len(r.error_response.error_message) > 300:
            fail(what + ": the error message repeats the whole name")
        return r


def parse_file(blob):
    from google.protobuf import descriptor_pb2
    f = descriptor_pb2.FileDescriptorProto()
    f.ParseFromString(blob)
    return f


def describe(refl, services):
    """Every file the services need, from reflection alone, in a new pool."""
    from google.protobuf import descriptor_pool
    protos = {}
    reqs = [refl.pb.ServerReflectionRequest(file_containing_symbol=s)
            for s in services]
    for r in refl.ask(reqs):
        kind = r.WhichOneof("message_response")
        if kind != "file_descriptor_response":
            fail("describe %s: %s" % (r.original_request, r))
        for b in r.file_descriptor_response.file_descriptor_proto:
            f = parse_file(b)
            protos[f.name] = f
    # Imports the answers left out (a server may send each file once per
    # stream) are asked for by name, as grpcurl does.
    while True:
        missing = sorted({d for f in protos.values() for d in f.dependency
                          if d not in protos})
        if not missing:
            break
        for d in missing:
            for f in refl.files(file_by_filename=d):
                protos[f.name] = f
            if d not in protos:
                fail("file_by_filename(%s) did not return it" % d)
    pool = descriptor_pool.DescriptorPool()
    added = set()

    def add(name, depth=0):
        if name in added:
            return
        if depth > 100:
            fail("import cycle at " + name)
        for d in protos[name].dependency:
            add(d, depth + 1)
        pool.Add(protos[name])
        added.add(name)

    for name in sorted(protos):
        add(name)
    for s in services:
        sd = pool.FindServiceByName(s)
        for m in sd.methods:
            # resolving both types proves the whole closure is there
            m.input_type.fields, m.output_type.fields
    return pool, protos


def message_class(pool, name):
    from google.protobuf import message_factory
    desc = pool.FindMessageTypeByName(name)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def unary(channel, pool, path, request):
    svc, method = path.strip("/").split("/")
    md = pool.FindServiceByName(svc).FindMethodByName(method)
    resp_cls = message_class(pool, md.output_type.full_name)
    call = channel.unary_unary(path,
                               request_serializer=lambda m:
                               m.SerializeToString(),
                               response_deserializer=resp_cls.FromString)
    return call(request, timeout=TIMEOUT)


def call_interop(channel, pool):
    req = message_class(pool, "grpc.testing.SimpleRequest")()
    req.response_size = 31
    req.payload.body = b"reflected"
    resp = unary(channel, pool, "/grpc.testing.TestService/UnaryCall", req)
    expect("UnaryCall payload size", len(resp.payload.body), 31)


def call_route_guide(channel, pool):
    pt = message_class(pool, "routeguide.Point")()
    pt.latitude = 409146138
    pt.longitude = -746188906
    feat = unary(channel, pool, "/routeguide.RouteGuide/GetFeature", pt)
    if not feat.name:
        fail("GetFeature of a known point has no name")
    expect("GetFeature location", feat.location.latitude, pt.latitude)


def call_helloworld(channel, pool):
    req = message_class(pool, "helloworld.HelloRequest")()
    req.name = "reflection"
    resp = unary(channel, pool, "/helloworld.Greeter/SayHello", req)
    expect("SayHello", resp.message, "Hello reflection")


def call_refltest(channel, pool):
    ev = message_class(pool, "crpc.refltest.Event")()
    ev.name = "echoed"
    ev.at.seconds = 1700000000  # google.protobuf.Timestamp, reflected too
    resp = unary(channel, pool, "/crpc.refltest.Events/Echo", ev)
    expect("Echo", resp.name, "echoed")


def check_server(name, srv, stubs, want_services, call):
    import grpc
    with grpc.insecure_channel(srv.addr) as ch:
        for (pb, pbg, version) in stubs:
            refl = Reflector(ch, pb, pbg, version)
            r = refl.one(list_services="")
            got = sorted(s.name for s in r.list_services_response.service)
            expect("%s %s services" % (name, version), got,
                   sorted(want_services))
            pool, protos = describe(refl, got)
            call(ch, pool)
            log("ok %s %s: %d services, %d files (%s), call made" %
                (name, version, len(got), len(protos),
                 ", ".join(sorted(protos))))


BUILTIN = ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
           "grpc.reflection.v1alpha.ServerReflection"]


def check_bad_inputs(srv, stubs):
    import grpc
    with grpc.insecure_channel(srv.addr) as ch:
        for (pb, pbg, version) in stubs:
            refl = Reflector(ch, pb, pbg, version)
            refl.error("unknown symbol", file_containing_symbol="no.such.Thing")
            refl.error("empty symbol", file_containing_symbol="")
            refl.error("empty file name", file_by_filename="")
            refl.error("64 KiB symbol",
                       file_containing_symbol="a." * 32768)
            refl.error("64 KiB file name", file_by_filename="x" * 65536)
            for bad in ["../refl_test.proto", "./refl_test.proto",
                        "/etc/passwd", "../../../../../../etc/passwd",
                        "google/protobuf/../../refl_test.proto"]:
                refl.error("file name %r" % bad, file_by_filename=bad)
            refl.error("a symbol's prefix",
                       file_containing_symbol="crpc.refltest.Eve")
            ext = pb.ExtensionRequest
            refl.error("extension of an unknown type",
                       file_containing_extension=ext(
                           containing_type="no.Such", extension_number=100))
            refl.error("unknown extension number",
                       file_containing_extension=ext(
                           containing_type="crpc.refltest.Event",
                           extension_number=101))
            refl.error("extension numbers of an unknown type",
                       all_extension_numbers_of_type="no.Such")
            refl.error("extension numbers of a non-message",
                       all_extension_numbers_of_type="crpc.refltest.Level")
            refl.error("a request of no kind", want_code=12)

            # every kind of symbol, found in its file
            for sym, want in [
                    ("crpc.refltest.Events", "refl_test.proto"),
                    ("crpc.refltest.Events.Echo", "refl_test.proto"),
                    ("crpc.refltest.Event", "refl_test.proto"),
                    ("crpc.refltest.Event.name", "refl_test.proto"),
                    ("crpc.refltest.Event.payload", "refl_test.proto"),
                    ("crpc.refltest.Event.Detail", "refl_test.proto"),
                    ("crpc.refltest.Event.Detail.Kind", "refl_test.proto"),
                    ("crpc.refltest.Event.Detail.KIND_LOUD",
                     "refl_test.proto"),
                    ("crpc.refltest.Level", "refl_test.proto"),
                    ("crpc.refltest.LEVEL_HIGH", "refl_test.proto"),
                    ("crpc.refltest.priority", "refl_test.proto"),
                    ("crpc.refltest.refl_label", "refl_test.proto"),
                    ("google.protobuf.Timestamp",
                     "google/protobuf/timestamp.proto"),
                    ("google.protobuf.FieldOptions",
                     "google/protobuf/descriptor.proto"),
                    ("grpc.health.v1.Health", "grpc/health/v1/health.proto"),
                    ("grpc.reflection.%s.ServerReflection" % version,
                     "grpc/reflection/%s/reflection.proto" % version)]:
                files = refl.files(file_containing_symbol=sym)
                expect("file of " + sym, files[0].name, want)
            files = refl.files(file_by_filename="refl_test.proto")
            expect("closure of refl_test.proto", sorted(f.name for f in files),
                   ["google/protobuf/descriptor.proto",
                    "google/protobuf/timestamp.proto", "refl_test.proto"])

            r = refl.one(all_extension_numbers_of_type="crpc.refltest.Event")
            got = r.all_extension_numbers_response
            expect("extension numbers", sorted(got.extension_number),
                   [100, 150])
            expect("base type", got.base_type_name, "crpc.refltest.Event")
            r = refl.one(all_extension_numbers_of_type="crpc.refltest.Event."
                         "Detail")
            expect("no extensions", list(
                r.all_extension_numbers_response.extension_number), [])
            for t, n in [("crpc.refltest.Event", 150),
                         ("google.protobuf.FieldOptions", 50123)]:
                files = refl.files(file_containing_extension=ext(
                    containing_type=t, extension_number=n))
                expect("file of extension %s %d" % (t, n), files[0].name,
                       "refl_test.proto")

            # many requests on one stream, answered in order (ask() checks
            # each answer's original_request against its request)
            R = pb.ServerReflectionRequest
            kinds = [R(list_services=""),
                     R(file_containing_symbol="crpc.refltest.Event"),
                     R(file_by_filename="nope.proto"),
                     R(file_by_filename="google/protobuf/timestamp.proto"),
                     R(all_extension_numbers_of_type="crpc.refltest.Event")]
            reqs = [kinds[i % len(kinds)] for i in range(500)]
            resps = refl.ask(reqs)
            expect("500th answer kind", resps[-1].WhichOneof(
                "message_response"), "all_extension_numbers_response")
            log("ok bad inputs and symbol kinds (%s)" % version)


def check_never_reads(srv, stubs):
    """A stream that never reads its answers must not stop the server."""
    import grpc
    pb, pbg, _ = stubs[0]
    stop = threading.Event()
    sent = [0]

    def requests():
        # each answer is refl_test.proto's closure, about 10 KB: 5000 of
        # them would be 50 MB if the server queued them all
        for _ in range(5000):
            if stop.is_set():
                return
            sent[0] += 1
            yield pb.ServerReflectionRequest(file_by_filename="refl_test.proto")

    with grpc.insecure_channel(srv.addr) as hog:
        stream = pbg.ServerReflectionStub(hog).ServerReflectionInfo(
            requests(), timeout=60)
        with grpc.insecure_channel(srv.addr) as ch:
            # the server answers others while the hog's answers pile up
            refl = Reflector(ch, pb, pbg, "v1")
            for _ in range(20):
                r = refl.one(list_services="")
                expect("services next to a hog",
                       len(r.list_services_response.service), 4)
        stop.set()
        stream.cancel()
    log("ok a client that never reads (%d requests written) does not stop "
        "the server" % sent[0])


def check_disabled(path, stubs):
    import grpc
    srv = Server([path, "--reflection=false"], True)
    try:
        with grpc.insecure_channel(srv.addr) as ch:
            pb, pbg, _ = stubs[0]
            try:
                Reflector(ch, pb, pbg, "v1").one(list_services="")
                fail("reflection answered with --reflection=false")
            except grpc.RpcError as e:
                expect("--reflection=false", e.code(),
                       grpc.StatusCode.UNIMPLEMENTED)
    finally:
        srv.close()
    log("ok --reflection=false: UNIMPLEMENTED")


def main():
    ap = argparse.ArgumentParser()
    for a in ("stubs", "interop", "route-guide", "helloworld", "refl-server"):
        ap.add_argument("--" + a, required=True)
    args = ap.parse_args()
    sys.path.insert(0, args.stubs)
    from reflection.v1 import reflection_pb2 as v1, reflection_pb2_grpc as v1g
    from reflection.v1alpha import (reflection_pb2 as v1a,
                                    reflection_pb2_grpc as v1ag)
    stubs = [(v1, v1g, "v1"), (v1a, v1ag, "v1alpha")]

    t0 = time.monotonic()
    servers = [
        ("crpc-interop-server", [args.interop, "--port=0"], False,
         ["grpc.testing.TestService"] + BUILTIN, call_interop),
        ("route-guide-server", [args.route_guide, "--port=0"], False,
         ["routeguide.RouteGuide"] + BUILTIN, call_route_guide),
        ("helloworld-server", [args.helloworld, "--port=0"], False,
         ["helloworld.Greeter"] + BUILTIN, call_helloworld),
        ("refl-test-server", [args.refl_server], True,
         ["crpc.refltest.Events"] + BUILTIN, call_refltest),
    ]
    for name, argv, by_stdin, want, call in servers:
        srv = Server(argv, by_stdin)
        try:
            check_server(name, srv, stubs, want, call)
            if name == "refl-test-server":
                check_bad_inputs(srv, stubs)
                check_never_reads(srv, stubs)
        finally:
            srv.close()
    check_disabled(args.refl_server, stubs)
    log("all reflection checks passed in %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
