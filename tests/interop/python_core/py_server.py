#!/usr/bin/python3
"""Python grpcio peer servers for crpc's interop tests.

  py_server.py --service=echo|helloworld|route_guide [--port=0] [--db=FILE]

Binds 127.0.0.1, prints one line "python <service> server listening on
127.0.0.1:PORT", and serves until SIGINT or SIGTERM, then exits 0. The
generated stubs (*_pb2.py, *_pb2_grpc.py) are found on PYTHONPATH or in
--stubs=DIR.

The echo service mirrors interop_core_server.c (see interop_core.proto);
helloworld and route_guide mirror crpc's examples, which in turn behave like
gRPC's own examples.
"""

import argparse
import json
import math
import signal
import sys
import threading
import time
from concurrent import futures

import grpc
import grpc._server  # CallState reads its cancellation flag

CODES = {c.value[0]: c for c in grpc.StatusCode}


def echoed_metadata(context):
    return tuple((k, v) for k, v in context.invocation_metadata()
                 if k.startswith("x-echo-"))


def time_left_ms(context):
    t = context.time_remaining()
    # grpcio reports "no deadline" as an infinite-future deadline.
    if t is None or t > 365 * 24 * 3600:
        return -1
    return max(0, int(t * 1000))


class Outcomes:
    """What the handlers of tagged calls observed, for GetOutcome."""

    def __init__(self):
        self._cond = threading.Condition()
        self._items = {}

    def record(self, tag, cancelled, time_left, messages):
        if not tag:
            return
        with self._cond:
            if tag in self._items:  # the first record of a call wins
                return
            self._items[tag] = (cancelled, time_left, messages)
            self._cond.notify_all()

    def wait(self, tag, wait_ms):
        deadline = time.monotonic() + wait_ms / 1000.0
        with self._cond:
            while tag not in self._items:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._items[tag]


class CallState:
    """Tracks one call: wakes sleeps when it ends, records its outcome.

    The outcome is recorded from grpcio's termination callback, which runs
    once every operation of the call has completed, including "receive
    close on server", whose cancelled flag is the only reliable sign that
    the peer (or the deadline) cancelled the call. A handler's own view is
    racy: when a client cancels a stream, the pending read may complete as
    a plain end of stream before that flag is seen. grpcio keeps the flag
    in a private field, so fall back to "the handler had not finished"
    where that field is missing.
    """

    def __init__(self, context, outcomes):
        self.context = context
        self.outcomes = outcomes
        self.tag = ""
        self.time_left = time_left_ms(context)
        self.messages = 0
        self.done = False
        self.ended = threading.Event()
        if not context.add_callback(self._on_end):
            self.ended.set()

    def _was_cancelled(self):
        state = getattr(self.context, "_state", None)
        cancelled = getattr(grpc._server, "_CANCELLED", None)
        if state is not None and cancelled is not None:
            return state.client is cancelled
        return not self.done

    def _on_end(self):
        self.outcomes.record(self.tag, self._was_cancelled(), self.time_left,
                             self.messages)
        self.ended.set()

    def set_tag(self, tag):
        if tag and not self.tag:
            self.tag = tag

    def sleep(self, ms):
        """Sleeps; returns False when the call ended meanwhile."""
        if ms > 0:
            self.ended.wait(ms / 1000.0)
        return self.context.is_active()

    def finish(self):
        """The handler is returning (normally or with a status)."""
        self.done = True


def pattern(n):
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


def make_echo_servicer(pb, pb_grpc):
    outcomes = Outcomes()

    def start(context):
        md = echoed_metadata(context)
        if md:
            context.send_initial_metadata(md)
            context.set_trailing_metadata(md)
        return CallState(context, outcomes)

    def end_with_status(st, context, req):
        st.finish()
        context.abort(CODES[req.status_code], req.status_message)

    def response_for(req, **kw):
        payload = pattern(req.response_size) if req.response_size > 0 \
            else req.payload
        return pb.EchoResponse(message=req.message, payload=payload, **kw)

    class Echo(pb_grpc.EchoServicer):
        def Unary(self, req, context):
            st = start(context)
            st.set_tag(req.tag)
            if not st.sleep(req.sleep_ms):
                st.finish()
                return pb.EchoResponse()
            if req.status_code != 0:
                end_with_status(st, context, req)
            st.finish()
            return response_for(req, time_left_ms=st.time_left)

        def ServerStream(self, req, context):
            st = start(context)
            st.set_tag(req.tag)
            try:
                for i in range(req.response_count):
                    if not st.sleep(req.sleep_ms):
                        return
                    st.messages += 1
                    yield response_for(req, index=i,
                                       time_left_ms=st.time_left)
                if req.status_code != 0:
                    end_with_status(st, context, req)
            finally:
                st.finish()

        def ClientStream(self, request_iterator, context):
            st = start(context)
            count = 0
            message = []
            payload = []
            try:
                for req in request_iterator:
                    st.set_tag(req.tag)
                    if req.status_code != 0:
                        end_with_status(st, context, req)
                    count += 1
                    message.append(req.message)
                    payload.append(req.payload)
            except grpc.RpcError:
                pass  # cancelled while reading
            st.finish()
            return pb.EchoResponse(message="".join(message),
                                   payload=b"".join(payload), count=count,
                                   time_left_ms=st.time_left)

        def Bidi(self, request_iterator, context):
            st = start(context)
            try:
                for req in request_iterator:
                    st.set_tag(req.tag)
                    if not st.sleep(req.sleep_ms):
                        return
                    if req.status_code != 0:
                        end_with_status(st, context, req)
                    st.messages += 1
                    yield response_for(req, index=st.messages - 1,
                                       time_left_ms=st.time_left)
            except grpc.RpcError:
                pass  # cancelled while reading
            finally:
                st.finish()

        def GetOutcome(self, req, context):
            o = outcomes.wait(req.tag, req.wait_ms)
            if o is None:
                return pb.Outcome(found=False)
            cancelled, time_left, messages = o
            return pb.Outcome(found=True, cancelled=cancelled,
                              time_left_ms=time_left, messages=messages)

    return Echo()


def add_echo(server, args):
    import interop_core_pb2 as pb
    import interop_core_pb2_grpc as pb_grpc
    pb_grpc.add_EchoServicer_to_server(make_echo_servicer(pb, pb_grpc),
                                       server)


def add_helloworld(server, args):
    import helloworld_pb2 as pb
    import helloworld_pb2_grpc as pb_grpc

    class Greeter(pb_grpc.GreeterServicer):
        def SayHello(self, req, context):
            md = echoed_metadata(context)
            if md:
                context.set_trailing_metadata(md)
            return pb.HelloReply(message="Hello " + req.name)

    pb_grpc.add_GreeterServicer_to_server(Greeter(), server)


def rg_distance(start, end):
    """Metres between two E7 points: the same formula and order of
    operations as route_guide_db.c, so both servers agree."""
    coord_factor = 10000000.0
    pi = 3.14159265358979323846
    phi1 = start.latitude / coord_factor * pi / 180.0
    phi2 = end.latitude / coord_factor * pi / 180.0
    dphi = (end.latitude - start.latitude) / coord_factor * pi / 180.0
    dlambda = (end.longitude - start.longitude) / coord_factor * pi / 180.0
    a = (math.sin(dphi / 2) * math.sin(dphi / 2) +
         math.cos(phi1) * math.cos(phi2) *
         math.sin(dlambda / 2) * math.sin(dlambda / 2))
    c = 2 * math.atan2(math.sqrt(a), math.sqrt(1 - a))
    return 6371000.0 * c


def rg_in_rect(rect, p):
    left = min(rect.lo.longitude, rect.hi.longitude)
    right = max(rect.lo.longitude, rect.hi.longitude)
    bottom = min(rect.lo.latitude, rect.hi.latitude)
    top = max(rect.lo.latitude, rect.hi.latitude)
    return left <= p.longitude <= right and bottom <= p.latitude <= top


def load_db(pb, path):
    with open(path, encoding="utf-8") as f:
        items = json.load(f)
    return [pb.Feature(name=it.get("name", ""),
                       location=pb.Point(
                           latitude=it["location"]["latitude"],
                           longitude=it["location"]["longitude"]))
            for it in items]


def add_route_guide(server, args):
    import route_guide_pb2 as pb
    import route_guide_pb2_grpc as pb_grpc
    if not args.db:
        sys.exit("--db is required for --service=route_guide")
    db = load_db(pb, args.db)

    def find(point):
        for f in db:
            if f.location == point:
                return f
        return None

    class RouteGuide(pb_grpc.RouteGuideServicer):
        def GetFeature(self, point, context):
            f = find(point)
            return f if f is not None else pb.Feature(name="",
                                                      location=point)

        def ListFeatures(self, rect, context):
            for f in db:
                if f.name and rg_in_rect(rect, f.location):
                    yield f

        def RecordRoute(self, point_iterator, context):
            points = features = 0
            distance = 0.0
            prev = None
            start = time.monotonic()
            for p in point_iterator:
                points += 1
                f = find(p)
                if f is not None and f.name:
                    features += 1
                if prev is not None:
                    distance += rg_distance(prev, p)
                prev = p
            return pb.RouteSummary(point_count=points,
                                   feature_count=features,
                                   distance=int(distance),
                                   elapsed_time=int(time.monotonic() - start))

        def RouteChat(self, note_iterator, context):
            prev = []
            for note in note_iterator:
                for p in prev:
                    if p.location == note.location:
                        yield p
                prev.append(note)

    pb_grpc.add_RouteGuideServicer_to_server(RouteGuide(), server)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--service", required=True,
                    choices=["echo", "helloworld", "route_guide"])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--db", default="")
    ap.add_argument("--stubs", default="")
    args = ap.parse_args()
    if args.stubs:
        sys.path.insert(0, args.stubs)

    # Block the stop signals before grpc starts its threads, so they inherit
    # the mask and sigwait() below is the only place that sees them.
    sigs = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, sigs)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64),
                         maximum_concurrent_rpcs=None)
    {"echo": add_echo, "helloworld": add_helloworld,
     "route_guide": add_route_guide}[args.service](server, args)
    port = server.add_insecure_port("%s:%d" % (args.host, args.port))
    if port == 0:
        sys.exit("cannot listen on %s:%d" % (args.host, args.port))
    server.start()
    print("python %s server listening on %s:%d"
          % (args.service, args.host, port), flush=True)
    signal.sigwait(sigs)
    server.stop(1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
