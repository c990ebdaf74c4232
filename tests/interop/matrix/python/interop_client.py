#!/usr/bin/python3
# A grpc.testing.TestService client on Python grpcio running one test case of
# gRPC's doc/interop-test-descriptions.md. A reference peer for crpc's
# interop matrix: exits 0 when the case passed, 1 with a message when it
# failed, 2 when grpcio cannot express the case (see UNSUPPORTED).
import argparse
import queue
import sys
import time

import grpc

from interop_common import empty_pb2, messages_pb2, test_pb2_grpc
from interop_common import parse_bool, read_file

# grpcio hides what these cases need; the matrix skips them for this client.
UNSUPPORTED = {
    'client_compressed_streaming':
        'grpcio cannot send one message of a compressed client stream '
        'uncompressed',
    'cacheable_unary': 'needs a caching proxy in front of the server',
}

ECHO_INITIAL = 'x-grpc-test-echo-initial'
ECHO_TRAILING = 'x-grpc-test-echo-trailing-bin'


# --default_compression: the channel's encoding of every request (grpc-go
# and grpc-js clients can be set up the same way).
COMPRESSION = {
    'identity': grpc.Compression.NoCompression,
    'gzip': grpc.Compression.Gzip,
    'deflate': grpc.Compression.Deflate,
}


class Failure(Exception):
    pass


def check(cond, fmt, *args):
    if not cond:
        raise Failure(fmt % args)


def expect_code(err_or_call, code, what):
    got = err_or_call.code()
    check(got == code, '%s: status %s (%s), want %s', what, got,
          err_or_call.details(), code)


def zeros(n):
    return messages_pb2.Payload(body=b'\0' * n)


def check_payload(payload, size, what):
    check(len(payload.body) == size, '%s: payload of %d bytes, want %d', what,
          len(payload.body), size)
    check(payload.body == b'\0' * size, '%s: payload is not all zeros', what)


def large_request(**kw):
    return messages_pb2.SimpleRequest(response_size=314159,
                                      payload=zeros(271828), **kw)


class Pipe:
    """A request iterator the test feeds one message at a time."""
    _END = object()

    def __init__(self):
        self._q = queue.Queue()

    def add(self, msg):
        self._q.put(msg)

    def close(self):
        self._q.put(self._END)

    def __iter__(self):
        return self

    def __next__(self):
        m = self._q.get()
        if m is self._END:
            raise StopIteration
        return m


def empty_unary(stub, args):
    resp = stub.EmptyCall(empty_pb2.Empty())
    check(isinstance(resp, empty_pb2.Empty), 'EmptyCall: no response')


def large_unary(stub, args):
    resp = stub.UnaryCall(large_request())
    check_payload(resp.payload, 314159, 'UnaryCall')


def client_compressed_unary(stub, args):
    T = messages_pb2.BoolValue(value=True)
    F = messages_pb2.BoolValue(value=False)
    # The uncompressed calls go through a channel of their own: grpcio
    # drops a per-call compression=NoCompression (it is 0, and
    # grpc/_compression.py tests it for truth), so under
    # --default_compression they would go compressed.
    plain_channel = args.make_channel(grpc.Compression.NoCompression)
    plain = test_pb2_grpc.TestServiceStub(plain_channel)
    try:
        try:
            plain.UnaryCall(large_request(expect_compressed=T))
            raise Failure('probe: uncompressed request with '
                          'expect_compressed succeeded, want '
                          'INVALID_ARGUMENT')
        except grpc.RpcError as e:
            expect_code(e, grpc.StatusCode.INVALID_ARGUMENT, 'probe')
        resp = stub.UnaryCall(large_request(expect_compressed=T),
                              compression=grpc.Compression.Gzip)
        check_payload(resp.payload, 314159, 'compressed UnaryCall')
        resp = plain.UnaryCall(large_request(expect_compressed=F))
        check_payload(resp.payload, 314159, 'uncompressed UnaryCall')
    finally:
        plain_channel.close()


def server_compressed_unary(stub, args):
    # grpcio does not expose the compressed flag of a received message: this
    # client checks that the server answers, not that it compressed.
    for c in (True, False):
        resp = stub.UnaryCall(large_request(
            response_compressed=messages_pb2.BoolValue(value=c)))
        check_payload(resp.payload, 314159, 'UnaryCall compressed=%s' % c)


def client_streaming(stub, args):
    sizes = (27182, 8, 1828, 45904)
    reqs = (messages_pb2.StreamingInputCallRequest(payload=zeros(n))
            for n in sizes)
    resp = stub.StreamingInputCall(reqs)
    check(resp.aggregated_payload_size == 74922,
          'aggregated_payload_size %d, want 74922',
          resp.aggregated_payload_size)


def client_compressed_streaming(stub, args):
    raise Failure(UNSUPPORTED['client_compressed_streaming'])


def server_streaming(stub, args):
    sizes = (31415, 9, 2653, 58979)
    req = messages_pb2.StreamingOutputCallRequest(response_parameters=[
        messages_pb2.ResponseParameters(size=n) for n in sizes])
    got = [len(r.payload.body) for r in stub.StreamingOutputCall(req)]
    check(got == list(sizes), 'response sizes %s, want %s', got, list(sizes))


def server_compressed_streaming(stub, args):
    # As server_compressed_unary: sizes only, the flag is not visible.
    params = [messages_pb2.ResponseParameters(
                  size=31415, compressed=messages_pb2.BoolValue(value=True)),
              messages_pb2.ResponseParameters(
                  size=92653, compressed=messages_pb2.BoolValue(value=False))]
    req = messages_pb2.StreamingOutputCallRequest(response_parameters=params)
    got = [len(r.payload.body) for r in stub.StreamingOutputCall(req)]
    check(got == [31415, 92653], 'response sizes %s, want [31415, 92653]',
          got)


def ping_pong(stub, args):
    reqs = ((31415, 27182), (9, 8), (2653, 1828), (58979, 45904))
    pipe = Pipe()
    call = stub.FullDuplexCall(pipe)
    try:
        for resp_size, req_size in reqs:
            pipe.add(messages_pb2.StreamingOutputCallRequest(
                response_parameters=[
                    messages_pb2.ResponseParameters(size=resp_size)],
                payload=zeros(req_size)))
            resp = next(call)
            check_payload(resp.payload, resp_size, 'ping_pong response')
        pipe.close()
        rest = list(call)
        check(not rest, '%d responses after the last ping', len(rest))
    finally:
        pipe.close()
    expect_code(call, grpc.StatusCode.OK, 'FullDuplexCall')


def empty_stream(stub, args):
    call = stub.FullDuplexCall(iter(()))
    got = list(call)
    check(not got, '%d responses, want none', len(got))
    expect_code(call, grpc.StatusCode.OK, 'FullDuplexCall')


def _check_echoed(call, what):
    initial = [v for k, v in call.initial_metadata() if k == ECHO_INITIAL]
    trailing = [v for k, v in call.trailing_metadata() if k == ECHO_TRAILING]
    check(initial == ['test_initial_metadata_value'],
          '%s: initial metadata echo %r', what, initial)
    check(trailing == [b'\xab\xab\xab'], '%s: trailing metadata echo %r',
          what, trailing)


def custom_metadata(stub, args):
    md = ((ECHO_INITIAL, 'test_initial_metadata_value'),
          (ECHO_TRAILING, b'\xab\xab\xab'))
    resp, call = stub.UnaryCall.with_call(large_request(), metadata=md)
    check_payload(resp.payload, 314159, 'UnaryCall')
    _check_echoed(call, 'UnaryCall')

    req = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=314159)],
        payload=zeros(271828))
    call = stub.FullDuplexCall(iter((req,)), metadata=md)
    got = [len(r.payload.body) for r in call]
    check(got == [314159], 'FullDuplexCall response sizes %s', got)
    expect_code(call, grpc.StatusCode.OK, 'FullDuplexCall')
    _check_echoed(call, 'FullDuplexCall')


def _status_echo(stub, message, streaming):
    status = messages_pb2.EchoStatus(code=2, message=message)
    try:
        stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status))
        raise Failure('UnaryCall succeeded, want UNKNOWN')
    except grpc.RpcError as e:
        expect_code(e, grpc.StatusCode.UNKNOWN, 'UnaryCall')
        check(e.details() == message, 'UnaryCall: message %r, want %r',
              e.details(), message)
    if not streaming:
        return
    req = messages_pb2.StreamingOutputCallRequest(response_status=status)
    call = stub.FullDuplexCall(iter((req,)))
    try:
        list(call)
        raise Failure('FullDuplexCall succeeded, want UNKNOWN')
    except grpc.RpcError:
        pass
    expect_code(call, grpc.StatusCode.UNKNOWN, 'FullDuplexCall')
    check(call.details() == message, 'FullDuplexCall: message %r, want %r',
          call.details(), message)


def status_code_and_message(stub, args):
    _status_echo(stub, 'test status message', True)


def special_status_message(stub, args):
    _status_echo(stub, '\t\ntest with whitespace\r\nand Unicode BMP \u263a '
                 'and non-BMP \U0001f608\t\n', False)


def unimplemented_method(stub, args):
    try:
        stub.UnimplementedCall(empty_pb2.Empty())
        raise Failure('UnimplementedCall succeeded')
    except grpc.RpcError as e:
        expect_code(e, grpc.StatusCode.UNIMPLEMENTED, 'UnimplementedCall')


def unimplemented_service(stub, args):
    other = test_pb2_grpc.UnimplementedServiceStub(args.channel)
    try:
        other.UnimplementedCall(empty_pb2.Empty())
        raise Failure('UnimplementedService/UnimplementedCall succeeded')
    except grpc.RpcError as e:
        expect_code(e, grpc.StatusCode.UNIMPLEMENTED, 'UnimplementedCall')


def cancel_after_begin(stub, args):
    pipe = Pipe()
    fut = stub.StreamingInputCall.future(pipe)
    fut.cancel()
    pipe.close()
    check(fut.cancelled(), 'call not cancelled')
    expect_code(fut, grpc.StatusCode.CANCELLED, 'StreamingInputCall')


def cancel_after_first_response(stub, args):
    pipe = Pipe()
    call = stub.FullDuplexCall(pipe)
    try:
        pipe.add(messages_pb2.StreamingOutputCallRequest(
            response_parameters=[messages_pb2.ResponseParameters(size=31415)],
            payload=zeros(27182)))
        resp = next(call)
        check_payload(resp.payload, 31415, 'first response')
        call.cancel()
    finally:
        pipe.close()
    expect_code(call, grpc.StatusCode.CANCELLED, 'FullDuplexCall')


def timeout_on_sleeping_server(stub, args):
    pipe = Pipe()
    call = stub.FullDuplexCall(pipe, timeout=0.001)
    try:
        pipe.add(messages_pb2.StreamingOutputCallRequest(
            payload=zeros(27182)))
        try:
            list(call)
        except grpc.RpcError:
            pass
    finally:
        pipe.close()
    expect_code(call, grpc.StatusCode.DEADLINE_EXCEEDED, 'FullDuplexCall')


def _soak(stub, args, new_channel):
    failures = 0
    deadline = time.monotonic() + args.soak_overall_timeout_seconds
    for i in range(args.soak_iterations):
        if time.monotonic() > deadline:
            raise Failure('soak: overall timeout after %d iterations' % i)
        start = time.monotonic()
        channel = args.make_channel() if new_channel else None
        s = test_pb2_grpc.TestServiceStub(channel) if channel else stub
        try:
            resp = s.UnaryCall(large_request())
            check_payload(resp.payload, 314159, 'soak UnaryCall')
            ms = (time.monotonic() - start) * 1000
            check(ms <= args.soak_per_iteration_max_acceptable_latency_ms,
                  'soak iteration %d took %.0f ms', i, ms)
        except (grpc.RpcError, Failure) as e:
            failures += 1
            print('soak iteration %d failed: %s' % (i, e), file=sys.stderr)
        finally:
            if channel:
                channel.close()
        left = args.soak_min_time_ms_between_rpcs / 1000 - (
            time.monotonic() - start)
        if left > 0:
            time.sleep(left)
    check(failures <= args.soak_max_failures,
          'soak: %d of %d iterations failed (max %d)', failures,
          args.soak_iterations, args.soak_max_failures)


def rpc_soak(stub, args):
    _soak(stub, args, False)


def channel_soak(stub, args):
    _soak(stub, args, True)


CASES = {f.__name__: f for f in (
    empty_unary, large_unary, client_compressed_unary,
    server_compressed_unary, client_streaming, client_compressed_streaming,
    server_streaming, server_compressed_streaming, ping_pong, empty_stream,
    custom_metadata, status_code_and_message, special_status_message,
    unimplemented_method, unimplemented_service, cancel_after_begin,
    cancel_after_first_response, timeout_on_sleeping_server, rpc_soak,
    channel_soak)}


def main():
    p = argparse.ArgumentParser(description='grpcio interop client')
    b = dict(type=parse_bool, nargs='?', const=True, default=False)
    p.add_argument('--server_host', default='localhost')
    p.add_argument('--server_port', type=int, required=True)
    p.add_argument('--server_host_override')
    p.add_argument('--test_case', default='large_unary')
    p.add_argument('--use_tls', **b)
    p.add_argument('--use_test_ca', **b)
    p.add_argument('--ca_file', help='CA bundle for --use_test_ca')
    p.add_argument('--default_compression', default='identity',
                   choices=sorted(COMPRESSION),
                   help='compression of every request on the channel')
    p.add_argument('--soak_iterations', type=int, default=10)
    p.add_argument('--soak_max_failures', type=int, default=0)
    p.add_argument('--soak_per_iteration_max_acceptable_latency_ms',
                   type=int, default=1000)
    p.add_argument('--soak_overall_timeout_seconds', type=int, default=60)
    p.add_argument('--soak_min_time_ms_between_rpcs', type=int, default=0)
    args = p.parse_args()

    if args.test_case in UNSUPPORTED:
        print('%s: not supported by the grpcio client: %s' % (
            args.test_case, UNSUPPORTED[args.test_case]), file=sys.stderr)
        return 2
    case = CASES.get(args.test_case)
    if case is None:
        print('unknown --test_case %r; known: %s' % (
            args.test_case, ' '.join(sorted(CASES))), file=sys.stderr)
        return 2

    target = '%s:%d' % (args.server_host, args.server_port)

    def make_channel(compression=COMPRESSION[args.default_compression]):
        if not args.use_tls:
            opts = []
            if args.server_host_override:
                opts.append(('grpc.default_authority',
                             args.server_host_override))
            return grpc.insecure_channel(target, options=opts,
                                         compression=compression)
        roots = None
        if args.use_test_ca:
            if not args.ca_file:
                sys.exit('--use_test_ca needs --ca_file')
            roots = read_file(args.ca_file)
        opts = []
        if args.server_host_override:
            opts.append(('grpc.ssl_target_name_override',
                         args.server_host_override))
        return grpc.secure_channel(
            target, grpc.ssl_channel_credentials(root_certificates=roots),
            options=opts, compression=compression)

    args.make_channel = make_channel
    args.channel = make_channel()
    stub = test_pb2_grpc.TestServiceStub(args.channel)
    try:
        case(stub, args)
    except Failure as e:
        print('%s FAILED: %s' % (args.test_case, e), file=sys.stderr)
        return 1
    except grpc.RpcError as e:
        print('%s FAILED: unexpected status %s: %s' % (
            args.test_case, e.code(), e.details()), file=sys.stderr)
        return 1
    finally:
        args.channel.close()
    print('%s: PASS' % args.test_case)
    return 0


if __name__ == '__main__':
    sys.exit(main())
