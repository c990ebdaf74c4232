#!/usr/bin/python3
"""Python grpcio peer client for crpc's interop tests.

  py_client.py --service=echo|helloworld|route_guide --target=HOST:PORT
               [--db=FILE] [--check=NAME]... [--stubs=DIR]

Runs named checks against a server (crpc's or py_server.py), prints
"PASS name" or "FAIL name: why" for each and a last line "N passed, M
failed"; exits 1 if any check failed.
"""

import argparse
import json
import os
import queue
import sys
import threading
import time

import grpc

CHECKS = {"echo": [], "helloworld": [], "route_guide": []}


def check(service):
    def register(fn):
        CHECKS[service].append(fn)
        return fn
    return register


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def expect_eq(got, want, what):
    if got != want:
        g, w = repr(got), repr(want)
        if len(g) > 200:
            g = g[:200] + "..."
        if len(w) > 200:
            w = w[:200] + "..."
        raise CheckFailed("%s: got %s, want %s" % (what, g, w))


def expect_rpc_error(fn, code, what):
    """Runs fn(), which must raise grpc.RpcError with |code|; returns it."""
    try:
        fn()
    except grpc.RpcError as e:
        expect_eq(e.code(), code, what + " status")
        return e
    raise CheckFailed(what + ": succeeded, want " + code.name)


def md_values(md, key):
    return [v for k, v in (md or ()) if k == key]


def pattern(n):
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


def unique_tag(name):
    return "%s-%d-%d" % (name, os.getpid(), time.monotonic_ns())


class Ctx:
    def __init__(self, args, channel):
        self.args = args
        self.channel = channel
        self._stubs = {}

    def stub(self, name):
        if name not in self._stubs:
            if name == "echo":
                import interop_core_pb2_grpc as g
                self._stubs[name] = g.EchoStub(self.channel)
            elif name == "not_served":
                import interop_core_pb2_grpc as g
                self._stubs[name] = g.NotServedStub(self.channel)
            elif name == "helloworld":
                import helloworld_pb2_grpc as g
                self._stubs[name] = g.GreeterStub(self.channel)
            elif name == "route_guide":
                import route_guide_pb2_grpc as g
                self._stubs[name] = g.RouteGuideStub(self.channel)
        return self._stubs[name]


def queue_iter(q):
    """Requests fed one by one from a queue; None ends the stream."""
    while True:
        item = q.get()
        if item is None:
            return
        yield item


# ---------------------------------------------------------------- echo ----

def epb():
    import interop_core_pb2 as pb
    return pb


def outcome(ctx, tag):
    o = ctx.stub("echo").GetOutcome(
        epb().OutcomeRequest(tag=tag, wait_ms=10000), timeout=20)
    expect(o.found, "server recorded no outcome for " + tag)
    return o


@check("echo")
def unary_basic(ctx):
    pb = epb()
    r = ctx.stub("echo").Unary(
        pb.EchoRequest(message="hello crpc", payload=b"\x00\x01\xfe\xff"),
        timeout=20)
    expect_eq(r.message, "hello crpc", "message")
    expect_eq(r.payload, b"\x00\x01\xfe\xff", "payload")


@check("echo")
def unary_empty(ctx):
    r = ctx.stub("echo").Unary(epb().EchoRequest(), timeout=20)
    expect_eq((r.message, r.payload, r.index, r.count), ("", b"", 0, 0),
              "response")


@check("echo")
def unary_large_request(ctx):
    payload = os.urandom(1024 * 1024)
    r = ctx.stub("echo").Unary(epb().EchoRequest(payload=payload),
                               timeout=10)
    expect(r.payload == payload, "1 MiB payload not echoed intact")


@check("echo")
def unary_large_response(ctx):
    n = 3 * 1024 * 1024
    r = ctx.stub("echo").Unary(epb().EchoRequest(response_size=n),
                               timeout=10)
    expect(r.payload == pattern(n), "3 MiB response payload corrupt")


@check("echo")
def unary_time_left(ctx):
    r = ctx.stub("echo").Unary(epb().EchoRequest(), timeout=30)
    # grpc-timeout may be rounded up to a coarser unit (grpcio sends a
    # little more than it was given): allow a second of slack.
    expect(0 < r.time_left_ms <= 31000,
           "server saw time_left_ms=%d for a 30 s deadline" % r.time_left_ms)


@check("echo")
def unary_no_deadline(ctx):
    r = ctx.stub("echo").Unary(epb().EchoRequest())
    expect_eq(r.time_left_ms, -1, "time_left_ms without a deadline")


@check("echo")
def server_stream(ctx):
    pb = epb()
    rs = list(ctx.stub("echo").ServerStream(
        pb.EchoRequest(message="s", payload=b"p", response_count=10),
        timeout=20))
    expect_eq([r.index for r in rs], list(range(10)), "indices")
    expect(all(r.message == "s" and r.payload == b"p" for r in rs),
           "streamed responses differ from the request")


@check("echo")
def server_stream_large(ctx):
    n = 256 * 1024
    rs = list(ctx.stub("echo").ServerStream(
        epb().EchoRequest(response_count=16, response_size=n), timeout=30))
    expect_eq(len(rs), 16, "responses")
    expect(all(r.payload == pattern(n) for r in rs), "payload corrupt")


@check("echo")
def server_stream_empty(ctx):
    call = ctx.stub("echo").ServerStream(
        epb().EchoRequest(response_count=0), timeout=20)
    expect_eq(list(call), [], "responses")
    expect_eq(call.code(), grpc.StatusCode.OK, "status")


@check("echo")
def server_stream_status_after(ctx):
    pb = epb()
    call = ctx.stub("echo").ServerStream(
        pb.EchoRequest(response_count=3, status_code=10,
                       status_message="aborted after three"), timeout=20)
    got = []
    e = expect_rpc_error(lambda: [got.append(r) for r in call],
                         grpc.StatusCode.ABORTED, "stream")
    expect_eq(len(got), 3, "responses before the status")
    expect_eq(e.details(), "aborted after three", "status message")


@check("echo")
def client_stream(ctx):
    pb = epb()
    reqs = [pb.EchoRequest(message=str(i), payload=bytes([i]) * 1000)
            for i in range(10)]
    r = ctx.stub("echo").ClientStream(iter(reqs), timeout=20)
    expect_eq(r.count, 10, "count")
    expect_eq(r.message, "0123456789", "messages")
    expect_eq(r.payload, b"".join(bytes([i]) * 1000 for i in range(10)),
              "payloads")


@check("echo")
def client_stream_empty(ctx):
    r = ctx.stub("echo").ClientStream(iter([]), timeout=20)
    expect_eq(r.count, 0, "count")


@check("echo")
def client_stream_early_status(ctx):
    pb = epb()
    q = queue.Queue()
    q.put(pb.EchoRequest(message="a"))
    q.put(pb.EchoRequest(status_code=9, status_message="stop here"))
    # The stream stays open: the server ends the call by itself.
    fut = ctx.stub("echo").ClientStream.future(queue_iter(q), timeout=20)
    try:
        e = expect_rpc_error(fut.result, grpc.StatusCode.FAILED_PRECONDITION,
                             "client stream")
        expect_eq(e.details(), "stop here", "status message")
    finally:
        q.put(None)


@check("echo")
def bidi_ping_pong(ctx):
    pb = epb()
    q = queue.Queue()
    call = ctx.stub("echo").Bidi(queue_iter(q), timeout=20)
    try:
        for i in range(10):
            q.put(pb.EchoRequest(message="ping %d" % i))
            r = next(call)
            expect_eq((r.message, r.index), ("ping %d" % i, i), "response")
    finally:
        q.put(None)
    expect_eq(list(call), [], "responses after half-close")
    expect_eq(call.code(), grpc.StatusCode.OK, "status")


@check("echo")
def bidi_batch(ctx):
    pb = epb()
    reqs = [pb.EchoRequest(message="m%d" % i, payload=os.urandom(100 * i))
            for i in range(50)]
    rs = list(ctx.stub("echo").Bidi(iter(reqs), timeout=20))
    expect_eq([r.message for r in rs], [q.message for q in reqs], "messages")
    expect(all(r.payload == q.payload for r, q in zip(rs, reqs)),
           "payloads differ")


@check("echo")
def bidi_status(ctx):
    pb = epb()
    reqs = [pb.EchoRequest(message="1"), pb.EchoRequest(message="2"),
            pb.EchoRequest(status_code=8, status_message="enough")]
    call = ctx.stub("echo").Bidi(iter(reqs), timeout=20)
    got = []
    e = expect_rpc_error(lambda: [got.append(r) for r in call],
                         grpc.StatusCode.RESOURCE_EXHAUSTED, "bidi")
    expect_eq([r.message for r in got], ["1", "2"], "responses")
    expect_eq(e.details(), "enough", "status message")


ECHO_MD = (("x-echo-ascii", "Hello, metadata! ~ 0123"),
           ("x-echo-blob-bin", b"\x00\x01\x80\xff binary\r\n"),
           ("x-echo-twice", "one"),
           ("x-echo-twice", "two"),
           ("x-not-echoed", "must not come back"))


def check_echoed(md, where, exact=True):
    """exact: each echoed value exactly once; otherwise at least once (an
    error without messages may carry headers and trailers together)."""
    def same(got, want):
        return got == want if exact else got[:len(want)] == want
    for key, want in (("x-echo-ascii", ["Hello, metadata! ~ 0123"]),
                      ("x-echo-blob-bin", [b"\x00\x01\x80\xff binary\r\n"]),
                      ("x-echo-twice", ["one", "two"])):
        got = md_values(md, key)
        expect(same(got, want), "%s %s: got %r, want %r"
               % (where, key, got, want))
    expect_eq(md_values(md, "x-not-echoed"), [], where + " x-not-echoed")


@check("echo")
def metadata_unary(ctx):
    r, call = ctx.stub("echo").Unary.with_call(
        epb().EchoRequest(message="md"), metadata=ECHO_MD, timeout=20)
    expect_eq(r.message, "md", "message")
    check_echoed(call.initial_metadata(), "headers")
    check_echoed(call.trailing_metadata(), "trailers")


@check("echo")
def metadata_server_stream(ctx):
    call = ctx.stub("echo").ServerStream(
        epb().EchoRequest(response_count=2), metadata=ECHO_MD, timeout=20)
    check_echoed(call.initial_metadata(), "headers")
    expect_eq(len(list(call)), 2, "responses")
    check_echoed(call.trailing_metadata(), "trailers")


@check("echo")
def metadata_bidi(ctx):
    pb = epb()
    call = ctx.stub("echo").Bidi(iter([pb.EchoRequest(message="x")] * 3),
                                 metadata=ECHO_MD, timeout=20)
    check_echoed(call.initial_metadata(), "headers")
    expect_eq(len(list(call)), 3, "responses")
    check_echoed(call.trailing_metadata(), "trailers")


@check("echo")
def metadata_error_trailers(ctx):
    e = expect_rpc_error(
        lambda: ctx.stub("echo").Unary(
            epb().EchoRequest(status_code=5, status_message="nope"),
            metadata=ECHO_MD, timeout=20),
        grpc.StatusCode.NOT_FOUND, "unary")
    check_echoed(tuple(e.initial_metadata() or ()) +
                 tuple(e.trailing_metadata() or ()), "headers+trailers",
                 exact=False)


@check("echo")
def metadata_bin_all_bytes(ctx):
    value = bytes(range(256)) * 4
    _, call = ctx.stub("echo").Unary.with_call(
        epb().EchoRequest(), metadata=(("x-echo-all-bin", value),),
        timeout=20)
    expect_eq(md_values(call.initial_metadata(), "x-echo-all-bin"), [value],
              "headers")
    expect_eq(md_values(call.trailing_metadata(), "x-echo-all-bin"), [value],
              "trailers")


STATUS_MESSAGE = ("100% sure: ünïcödé ✓ — ☃ \U0001F600\nsecond line\t"
                  "tab %41 %zz %")


@check("echo")
def status_message_encoding(ctx):
    e = expect_rpc_error(
        lambda: ctx.stub("echo").Unary(
            epb().EchoRequest(status_code=3, status_message=STATUS_MESSAGE),
            timeout=20),
        grpc.StatusCode.INVALID_ARGUMENT, "unary")
    expect_eq(e.details(), STATUS_MESSAGE, "status message")


@check("echo")
def status_all_codes(ctx):
    for c in grpc.StatusCode:
        if c == grpc.StatusCode.OK:
            continue
        e = expect_rpc_error(
            lambda: ctx.stub("echo").Unary(
                epb().EchoRequest(status_code=c.value[0],
                                  status_message="code " + c.name),
                timeout=20),
            c, c.name)
        expect_eq(e.details(), "code " + c.name, c.name + " message")


@check("echo")
def deadline_exceeded(ctx):
    tag = unique_tag("deadline")
    t0 = time.monotonic()
    expect_rpc_error(
        lambda: ctx.stub("echo").Unary(
            epb().EchoRequest(sleep_ms=20000, tag=tag), timeout=0.3),
        grpc.StatusCode.DEADLINE_EXCEEDED, "unary")
    took = time.monotonic() - t0
    expect(took < 10, "deadline of 0.3 s fired after %.1f s" % took)
    o = outcome(ctx, tag)
    expect(o.cancelled, "server handler did not see the deadline pass")
    # grpcio may round grpc-timeout up to a coarser unit: 10% of slack.
    expect(0 < o.time_left_ms <= 330,
           "server saw time_left_ms=%d for 300 ms" % o.time_left_ms)


@check("echo")
def deadline_server_stream(ctx):
    tag = unique_tag("deadline-stream")
    call = ctx.stub("echo").ServerStream(
        epb().EchoRequest(response_count=1000, sleep_ms=20, tag=tag),
        timeout=0.5)
    got = []
    expect_rpc_error(lambda: [got.append(r) for r in call],
                     grpc.StatusCode.DEADLINE_EXCEEDED, "stream")
    expect(0 < len(got) < 1000, "%d responses before the deadline" % len(got))
    o = outcome(ctx, tag)
    expect(o.cancelled, "server handler did not see the deadline pass")


@check("echo")
def unimplemented_method(ctx):
    expect_rpc_error(
        lambda: ctx.stub("echo").Unimplemented(epb().EchoRequest(),
                                               timeout=20),
        grpc.StatusCode.UNIMPLEMENTED, "Echo.Unimplemented")


@check("echo")
def unknown_service(ctx):
    expect_rpc_error(
        lambda: ctx.stub("not_served").Nothing(epb().EchoRequest(),
                                               timeout=20),
        grpc.StatusCode.UNIMPLEMENTED, "NotServed.Nothing")


@check("echo")
def unknown_method_path(ctx):
    pb = epb()
    m = ctx.channel.unary_unary(
        "/crpc.test.Echo/NoSuchMethod",
        request_serializer=pb.EchoRequest.SerializeToString,
        response_deserializer=pb.EchoResponse.FromString)
    expect_rpc_error(lambda: m(pb.EchoRequest(), timeout=20),
                     grpc.StatusCode.UNIMPLEMENTED, "NoSuchMethod")
    # The server is still fine afterwards.
    expect_eq(ctx.stub("echo").Unary(pb.EchoRequest(message="ok"),
                                     timeout=20).message, "ok", "next call")


@check("echo")
def cancel_server_stream(ctx):
    tag = unique_tag("cancel-stream")
    call = ctx.stub("echo").ServerStream(
        epb().EchoRequest(response_count=5000, sleep_ms=2, tag=tag),
        timeout=30)
    for _ in range(3):
        next(call)
    call.cancel()
    expect_rpc_error(lambda: list(call), grpc.StatusCode.CANCELLED,
                     "after cancel")
    o = outcome(ctx, tag)
    expect(o.cancelled, "server handler did not see the cancellation")
    expect(3 <= o.messages < 5000, "server wrote %d messages" % o.messages)


@check("echo")
def cancel_bidi(ctx):
    pb = epb()
    tag = unique_tag("cancel-bidi")
    q = queue.Queue()
    call = ctx.stub("echo").Bidi(queue_iter(q), timeout=30)
    try:
        q.put(pb.EchoRequest(message="1", tag=tag))
        expect_eq(next(call).message, "1", "first response")
        q.put(pb.EchoRequest(message="2"))
        expect_eq(next(call).message, "2", "second response")
        call.cancel()  # the server handler is now blocked reading
        expect_rpc_error(lambda: list(call), grpc.StatusCode.CANCELLED,
                         "after cancel")
    finally:
        q.put(None)
    o = outcome(ctx, tag)
    expect(o.cancelled, "server handler did not see the cancellation")
    expect_eq(o.messages, 2, "messages the server wrote")


@check("echo")
def concurrent_unary(ctx):
    pb = epb()
    futs = [ctx.stub("echo").Unary.future(
        pb.EchoRequest(message="c%d" % i, payload=os.urandom(i * 100)),
        timeout=30) for i in range(100)]
    for i, f in enumerate(futs):
        expect_eq(f.result().message, "c%d" % i, "response %d" % i)


@check("echo")
def concurrent_streams(ctx):
    pb = epb()
    results = [None] * 8

    def one(i):
        rs = list(ctx.stub("echo").Bidi(
            iter([pb.EchoRequest(message="%d.%d" % (i, j))
                  for j in range(20)]), timeout=30))
        results[i] = [r.message for r in rs]

    ts = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for i in range(8):
        expect_eq(results[i], ["%d.%d" % (i, j) for j in range(20)],
                  "stream %d" % i)


@check("echo")
def compression_gzip(ctx):
    pb = epb()
    payload = b"compressible " * 10000
    r = ctx.stub("echo").Unary(pb.EchoRequest(payload=payload), timeout=20,
                               compression=grpc.Compression.Gzip)
    expect(r.payload == payload, "gzip request payload corrupt")
    rs = list(ctx.stub("echo").Bidi(iter([pb.EchoRequest(payload=payload)]
                                         * 3), timeout=20,
                                    compression=grpc.Compression.Gzip))
    expect(len(rs) == 3 and all(x.payload == payload for x in rs),
           "gzip stream payload corrupt")


# ----------------------------------------------------------- helloworld ----

def hpb():
    import helloworld_pb2 as pb
    return pb


@check("helloworld")
def say_hello(ctx):
    r = ctx.stub("helloworld").SayHello(hpb().HelloRequest(name="world"),
                                        timeout=20)
    expect_eq(r.message, "Hello world", "reply")


@check("helloworld")
def say_hello_unicode(ctx):
    name = "wörld ✓ \U0001F600"
    r = ctx.stub("helloworld").SayHello(hpb().HelloRequest(name=name),
                                        timeout=20)
    expect_eq(r.message, "Hello " + name, "reply")


@check("helloworld")
def say_hello_empty(ctx):
    r = ctx.stub("helloworld").SayHello(hpb().HelloRequest(), timeout=20)
    expect_eq(r.message, "Hello ", "reply")


@check("helloworld")
def say_hello_large(ctx):
    name = "x" * (256 * 1024)
    r = ctx.stub("helloworld").SayHello(hpb().HelloRequest(name=name),
                                        timeout=20)
    expect(r.message == "Hello " + name, "256 KiB name not echoed intact")


@check("helloworld")
def say_hello_metadata(ctx):
    r, call = ctx.stub("helloworld").SayHello.with_call(
        hpb().HelloRequest(name="md"),
        metadata=(("x-echo-trace", "abc-123"), ("x-echo-id-bin", b"\x00\xff"),
                  ("x-other", "no")), timeout=20)
    expect_eq(r.message, "Hello md", "reply")
    md = call.trailing_metadata()
    expect_eq(md_values(md, "x-echo-trace"), ["abc-123"], "trailer")
    expect_eq(md_values(md, "x-echo-id-bin"), [b"\x00\xff"], "bin trailer")
    expect_eq(md_values(md, "x-other"), [], "x-other trailer")


@check("helloworld")
def say_hello_concurrent(ctx):
    futs = [ctx.stub("helloworld").SayHello.future(
        hpb().HelloRequest(name="n%d" % i), timeout=30) for i in range(200)]
    for i, f in enumerate(futs):
        expect_eq(f.result().message, "Hello n%d" % i, "reply %d" % i)


@check("helloworld")
def greeter_unknown_method(ctx):
    pb = hpb()
    m = ctx.channel.unary_unary(
        "/helloworld.Greeter/SayGoodbye",
        request_serializer=pb.HelloRequest.SerializeToString,
        response_deserializer=pb.HelloReply.FromString)
    expect_rpc_error(lambda: m(pb.HelloRequest(name="x"), timeout=20),
                     grpc.StatusCode.UNIMPLEMENTED, "SayGoodbye")


# ---------------------------------------------------------- route_guide ----

def rpb():
    import route_guide_pb2 as pb
    return pb


def load_db(ctx):
    pb = rpb()
    with open(ctx.args.db, encoding="utf-8") as f:
        items = json.load(f)
    return [pb.Feature(name=it.get("name", ""),
                       location=pb.Point(
                           latitude=it["location"]["latitude"],
                           longitude=it["location"]["longitude"]))
            for it in items]


@check("route_guide")
def get_feature_known(ctx):
    db = load_db(ctx)
    expect(len(db) > 0, "empty database")
    for f in db:
        r = ctx.stub("route_guide").GetFeature(f.location, timeout=20)
        expect_eq(r, f, "feature at %s" % str(f.location).replace("\n", " "))


@check("route_guide")
def get_feature_missing(ctx):
    pb = rpb()
    p = pb.Point(latitude=0, longitude=0)
    r = ctx.stub("route_guide").GetFeature(p, timeout=20)
    expect_eq(r.name, "", "name")
    expect_eq(r.location, p, "location")


def rect_features(db, rect):
    left = min(rect.lo.longitude, rect.hi.longitude)
    right = max(rect.lo.longitude, rect.hi.longitude)
    bottom = min(rect.lo.latitude, rect.hi.latitude)
    top = max(rect.lo.latitude, rect.hi.latitude)
    return [f for f in db if f.name and
            left <= f.location.longitude <= right and
            bottom <= f.location.latitude <= top]


@check("route_guide")
def list_features(ctx):
    pb = rpb()
    db = load_db(ctx)
    rect = pb.Rectangle(lo=pb.Point(latitude=400000000, longitude=-750000000),
                        hi=pb.Point(latitude=420000000, longitude=-730000000))
    want = rect_features(db, rect)
    expect(0 < len(want) < len(db), "test rectangle should be a strict subset")
    got = list(ctx.stub("route_guide").ListFeatures(rect, timeout=20))
    expect_eq(got, want, "features")
    # Corners in the other order mean the same rectangle.
    rect2 = pb.Rectangle(lo=rect.hi, hi=rect.lo)
    got = list(ctx.stub("route_guide").ListFeatures(rect2, timeout=20))
    expect_eq(got, want, "features (swapped corners)")


@check("route_guide")
def list_features_none(ctx):
    pb = rpb()
    rect = pb.Rectangle(lo=pb.Point(latitude=1, longitude=1),
                        hi=pb.Point(latitude=2, longitude=2))
    expect_eq(list(ctx.stub("route_guide").ListFeatures(rect, timeout=20)),
              [], "features")


def expected_summary(db, points):
    import py_server
    named = {(f.location.latitude, f.location.longitude) for f in db
             if f.name}
    dist = 0.0
    for a, b in zip(points, points[1:]):
        dist += py_server.rg_distance(a, b)
    feats = sum(1 for p in points if (p.latitude, p.longitude) in named)
    return len(points), feats, int(dist)


@check("route_guide")
def record_route(ctx):
    pb = rpb()
    db = load_db(ctx)
    points = [f.location for f in db[:10]] + [pb.Point(latitude=1,
                                                       longitude=2)]
    n, feats, dist = expected_summary(db, points)
    r = ctx.stub("route_guide").RecordRoute(iter(points), timeout=20)
    expect_eq(r.point_count, n, "point_count")
    expect_eq(r.feature_count, feats, "feature_count")
    # Both servers use the same formula; allow a rounding step anyway.
    expect(abs(r.distance - dist) <= 1,
           "distance %d, want %d" % (r.distance, dist))
    expect(r.elapsed_time >= 0, "elapsed_time")


@check("route_guide")
def record_route_empty(ctx):
    r = ctx.stub("route_guide").RecordRoute(iter([]), timeout=20)
    expect_eq((r.point_count, r.feature_count, r.distance), (0, 0, 0),
              "summary")


@check("route_guide")
def route_chat(ctx):
    pb = rpb()
    a = pb.Point(latitude=0, longitude=1)
    b = pb.Point(latitude=0, longitude=2)
    notes = [pb.RouteNote(location=loc, message=msg) for loc, msg in
             ((a, "first"), (b, "second"), (a, "third"), (b, "fourth"),
              (a, "fifth"))]
    got = list(ctx.stub("route_guide").RouteChat(iter(notes), timeout=20))
    expect_eq([n.message for n in got],
              ["first", "second", "first", "third"], "notes")


# ----------------------------------------------------------------- main ----

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--service", required=True, choices=sorted(CHECKS))
    ap.add_argument("--target", default="localhost:50051")
    ap.add_argument("--db", default="")
    ap.add_argument("--check", action="append", default=[])
    ap.add_argument("--stubs", default="")
    args = ap.parse_args()
    if args.stubs:
        sys.path.insert(0, args.stubs)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    checks = CHECKS[args.service]
    unknown = set(args.check) - {c.__name__ for c in checks}
    if unknown:
        sys.exit("unknown checks: " + ", ".join(sorted(unknown)))
    passed = failed = 0
    # Large messages in both directions: lift grpcio's 4 MiB receive limit.
    with grpc.insecure_channel(args.target, options=[
            ("grpc.max_receive_message_length", 16 * 1024 * 1024)]) as ch:
        ctx = Ctx(args, ch)
        for fn in checks:
            if args.check and fn.__name__ not in args.check:
                continue
            try:
                fn(ctx)
            except CheckFailed as e:
                failed += 1
                print("FAIL %s: %s" % (fn.__name__, e), flush=True)
            except grpc.RpcError as e:
                failed += 1
                print("FAIL %s: unexpected RPC error %s: %s"
                      % (fn.__name__, e.code(), e.details()), flush=True)
            except Exception as e:  # a bug in a check still counts
                failed += 1
                print("FAIL %s: %r" % (fn.__name__, e), flush=True)
            else:
                passed += 1
                print("PASS %s" % fn.__name__, flush=True)
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
