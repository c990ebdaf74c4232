#!/usr/bin/python3
# A grpc.testing.TestService server on Python grpcio, following gRPC's
# doc/interop-test-descriptions.md ("Server" section). A reference peer for
# crpc's interop matrix. Prints the port it listens on, alone on one line.
#
# Limitation of grpcio: a Python servicer cannot see whether a request
# arrived compressed, so expect_compressed (CompressedRequest) is not
# checked; the matrix does not run client_compressed_* against this server.
import argparse
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

from interop_common import empty_pb2, messages_pb2, test_pb2_grpc
from interop_common import parse_bool, read_file

ECHO_INITIAL = 'x-grpc-test-echo-initial'
ECHO_TRAILING = 'x-grpc-test-echo-trailing-bin'


def _payload(size):
    return messages_pb2.Payload(body=b'\0' * size)


def _echo_metadata(ctx):
    md = ctx.invocation_metadata()
    initial = tuple((k, v) for k, v in md if k == ECHO_INITIAL)
    trailing = tuple((k, v) for k, v in md if k == ECHO_TRAILING)
    if initial:
        ctx.send_initial_metadata(initial)
    if trailing:
        ctx.set_trailing_metadata(trailing)


def _maybe_echo_status(req, ctx):
    if req.HasField('response_status') and req.response_status.code != 0:
        ctx.abort(_status_code(req.response_status.code),
                  req.response_status.message)


def _status_code(number):
    for c in grpc.StatusCode:
        if c.value[0] == number:
            return c
    return grpc.StatusCode.UNKNOWN


def _set_stream_compression(req, ctx):
    # Only effective before the response headers are out (grpcio sends the
    # encoding with them); later messages keep the encoding chosen first.
    if any(p.compressed.value for p in req.response_parameters):
        ctx.set_compression(grpc.Compression.Gzip)


def _stream_responses(req, ctx):
    """Yields one response per ResponseParameters of |req|."""
    for p in req.response_parameters:
        if p.interval_us > 0:
            time.sleep(p.interval_us / 1e6)
        if not p.compressed.value:
            ctx.disable_next_message_compression()
        yield messages_pb2.StreamingOutputCallResponse(
            payload=_payload(p.size))


class TestService(test_pb2_grpc.TestServiceServicer):

    def EmptyCall(self, req, ctx):
        _echo_metadata(ctx)
        return empty_pb2.Empty()

    def UnaryCall(self, req, ctx):
        # The encoding goes out in the response headers: choose it first.
        if req.response_compressed.value:
            ctx.set_compression(grpc.Compression.Gzip)
        _echo_metadata(ctx)
        _maybe_echo_status(req, ctx)
        if req.response_type != messages_pb2.COMPRESSABLE:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      'unsupported response_type')
        return messages_pb2.SimpleResponse(payload=_payload(req.response_size))

    def CacheableUnaryCall(self, req, ctx):
        ctx.send_initial_metadata((('cache-control', 'max-age=60, public'),))
        stamp = str(time.time_ns()).encode()
        return messages_pb2.SimpleResponse(
            payload=messages_pb2.Payload(body=stamp))

    def StreamingOutputCall(self, req, ctx):
        _set_stream_compression(req, ctx)
        _echo_metadata(ctx)
        _maybe_echo_status(req, ctx)
        yield from _stream_responses(req, ctx)

    def StreamingInputCall(self, req_iter, ctx):
        _echo_metadata(ctx)
        total = 0
        for req in req_iter:
            total += len(req.payload.body)
        return messages_pb2.StreamingInputCallResponse(
            aggregated_payload_size=total)

    def FullDuplexCall(self, req_iter, ctx):
        _echo_metadata(ctx)
        for req in req_iter:
            _maybe_echo_status(req, ctx)
            _set_stream_compression(req, ctx)
            yield from _stream_responses(req, ctx)

    def HalfDuplexCall(self, req_iter, ctx):
        _echo_metadata(ctx)
        reqs = list(req_iter)
        for req in reqs:
            _maybe_echo_status(req, ctx)
            _set_stream_compression(req, ctx)
            yield from _stream_responses(req, ctx)


def main():
    p = argparse.ArgumentParser(description='grpcio interop server')
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--host', default='127.0.0.1',
                   help='address to bind (default loopback)')
    p.add_argument('--use_tls', type=parse_bool, nargs='?', const=True,
                   default=False)
    p.add_argument('--tls_cert_file')
    p.add_argument('--tls_key_file')
    args = p.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    addr = '%s:%d' % (args.host, args.port)
    if args.use_tls:
        if not args.tls_cert_file or not args.tls_key_file:
            sys.exit('interop_server: --use_tls needs --tls_cert_file and '
                     '--tls_key_file')
        creds = grpc.ssl_server_credentials(
            ((read_file(args.tls_key_file), read_file(args.tls_cert_file)),))
        port = server.add_secure_port(addr, creds)
    else:
        port = server.add_insecure_port(addr)
    if port == 0:
        sys.exit('interop_server: cannot listen on %s' % addr)
    server.start()
    print(port, flush=True)

    done = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: done.set())
    done.wait()
    server.stop(0).wait()


if __name__ == '__main__':
    main()
