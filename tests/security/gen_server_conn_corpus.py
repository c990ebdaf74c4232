#!/usr/bin/python3
"""Writes the seed corpus of tests/fuzz/fuzz_server_conn.c.

  gen_server_conn_corpus.py OUT_DIR

Each seed is what a client sends after the HTTP/2 magic (the fuzz target
adds the magic): frames built by hand, header blocks in HPACK literals
(no Huffman, no indexing, so the fuzzer can mutate names and values in
place). The seeds cover every RPC kind of the target's server, CONTINUATION,
padding and priority flags, compression, metadata, resets, pings, window
updates, GOAWAY and the bad requests a server must refuse.
"""
import gzip
import os
import struct
import sys

DATA, HEADERS, PRIORITY, RST, SETTINGS, PING, GOAWAY, WU, CONT = (
    0, 1, 2, 3, 4, 6, 7, 8, 9)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 1, 1, 4, 8, 0x20


def frame(ftype, flags, sid, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) +
            struct.pack(">I", sid & 0x7fffffff) + payload)


def hint(n, prefix_bits=7, first=0):
    limit = (1 << prefix_bits) - 1
    if n < limit:
        return bytes([first | n])
    out = [first | limit]
    n -= limit
    while n >= 128:
        out.append(n % 128 + 128)
        n //= 128
    out.append(n)
    return bytes(out)


def hpack(headers):
    out = b""
    for k, v in headers:
        k, v = k.encode(), v if isinstance(v, bytes) else v.encode()
        out += b"\x00" + hint(len(k)) + k + hint(len(v)) + v
    return out


def req_headers(path, extra=(), ctype="application/grpc", method="POST"):
    return hpack([(":method", method), (":scheme", "http"), (":path", path),
                  (":authority", "localhost"), ("content-type", ctype),
                  ("te", "trailers")] + list(extra))


def hello(name):
    n = name.encode()
    return b"\x0a" + hint(len(n)) + n if n else b""


def msg(body, compressed=False):
    return bytes([1 if compressed else 0]) + struct.pack(">I", len(body)) + body


SETTINGS0 = frame(SETTINGS, 0, 0)


def unary(path, name, sid=1, extra=()):
    return (frame(HEADERS, END_HEADERS, sid, req_headers(path, extra)) +
            frame(DATA, END_STREAM, sid, msg(hello(name))))


SEEDS = {
    "unary": SETTINGS0 + unary("/helloworld.Greeter/SayHello", "world"),
    "unary_inline": SETTINGS0 + unary("/f.F/Inline", "inline"),
    "unary_fail": SETTINGS0 + unary("/f.F/Inline", "fail"),
    "unary_gzip_reply": SETTINGS0 + unary(
        "/helloworld.Greeter/SayHello", "gzip",
        extra=[("grpc-accept-encoding", "identity,gzip")]),
    "sstream": SETTINGS0 + unary("/f.F/SStream", "s"),
    "cstream": SETTINGS0 + frame(HEADERS, END_HEADERS, 1,
                                 req_headers("/f.F/CStream")) +
    frame(DATA, 0, 1, msg(hello("a"))) + frame(DATA, 0, 1, msg(hello("b"))) +
    frame(DATA, END_STREAM, 1, msg(hello("c"))),
    "bidi_rst": SETTINGS0 + frame(HEADERS, END_HEADERS, 1,
                                  req_headers("/f.F/Bidi")) +
    frame(DATA, 0, 1, msg(hello("x"))) + frame(DATA, 0, 1, msg(hello("y"))) +
    frame(RST, 0, 1, struct.pack(">I", 8)),
    "bidi_split_message": SETTINGS0 + frame(HEADERS, END_HEADERS, 1,
                                            req_headers("/f.F/Bidi")) +
    frame(DATA, 0, 1, msg(hello("split"))[:3]) +
    frame(DATA, END_STREAM, 1, msg(hello("split"))[3:]),
    "continuation": SETTINGS0 + frame(
        HEADERS, 0, 1, req_headers("/f.F/Inline")[:20]) +
    frame(CONT, 0, 1, req_headers("/f.F/Inline")[20:40]) +
    frame(CONT, END_HEADERS, 1, req_headers("/f.F/Inline")[40:]) +
    frame(DATA, END_STREAM, 1, msg(hello("cont"))),
    "padded_priority": SETTINGS0 + frame(
        HEADERS, END_HEADERS | PADDED | PRIO, 1,
        b"\x03" + b"\x00\x00\x00\x00\x10" +
        req_headers("/f.F/Inline") + b"\x00" * 3) +
    frame(DATA, END_STREAM | PADDED, 1, b"\x02" + msg(hello("pad")) +
          b"\x00\x00") + frame(PRIORITY, 0, 3, b"\x00\x00\x00\x01\x20"),
    "compressed_request": SETTINGS0 + frame(
        HEADERS, END_HEADERS, 1,
        req_headers("/f.F/Inline", [("grpc-encoding", "gzip")])) +
    frame(DATA, END_STREAM, 1, msg(gzip.compress(hello("zip")), True)),
    "deflate_bad": SETTINGS0 + frame(
        HEADERS, END_HEADERS, 1,
        req_headers("/f.F/Inline", [("grpc-encoding", "deflate")])) +
    frame(DATA, END_STREAM, 1, msg(b"\x78\x9c\xff\xff", True)),
    "metadata": SETTINGS0 + unary(
        "/helloworld.Greeter/SayHello", "md",
        extra=[("grpc-timeout", "5S"), ("x-custom", "value"),
               ("x-trace-bin", "AAEC"), ("user-agent", "fuzz/1"),
               ("x-empty", "")]),
    "timeout_bad": SETTINGS0 + unary("/f.F/Inline", "t",
                                     extra=[("grpc-timeout", "99999999999H")]),
    "auth_denied": SETTINGS0 + unary("/f.F/Inline", "deny",
                                     extra=[("x-deny", "1")]),
    "unknown_method": SETTINGS0 + unary("/no.Such/Method", "x"),
    "wrong_content_type": SETTINGS0 + frame(
        HEADERS, END_HEADERS | END_STREAM, 1,
        req_headers("/f.F/Inline", ctype="text/html")),
    "get": SETTINGS0 + frame(HEADERS, END_HEADERS | END_STREAM, 1,
                             req_headers("/f.F/Inline", method="GET")),
    "too_long_prefix": SETTINGS0 + frame(
        HEADERS, END_HEADERS, 1, req_headers("/f.F/Inline")) +
    frame(DATA, END_STREAM, 1, b"\x00\x7f\xff\xff\xff" + b"x" * 16),
    "two_messages_unary": SETTINGS0 + frame(
        HEADERS, END_HEADERS, 1, req_headers("/f.F/Inline")) +
    frame(DATA, 0, 1, msg(hello("one"))) +
    frame(DATA, END_STREAM, 1, msg(hello("two"))),
    "control": SETTINGS0 + frame(PING, 0, 0, b"12345678") +
    frame(SETTINGS, ACK, 0) +
    frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 1 << 20) +
          struct.pack(">HI", 3, 10)) +
    frame(WU, 0, 0, struct.pack(">I", 1 << 20)) +
    unary("/f.F/SStream", "w") + frame(WU, 0, 1, struct.pack(">I", 100)) +
    frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0) + b"bye"),
    "interleaved": SETTINGS0 +
    frame(HEADERS, END_HEADERS, 1, req_headers("/f.F/Bidi")) +
    frame(HEADERS, END_HEADERS, 3, req_headers("/f.F/CStream")) +
    frame(DATA, 0, 1, msg(hello("1"))) + frame(DATA, 0, 3, msg(hello("3"))) +
    unary("/f.F/Inline", "5", sid=5) + frame(DATA, END_STREAM, 1, b"") +
    frame(DATA, END_STREAM, 3, b""),
    "request_trailers": SETTINGS0 + frame(
        HEADERS, END_HEADERS, 1, req_headers("/f.F/CStream")) +
    frame(DATA, 0, 1, msg(hello("t"))) +
    frame(HEADERS, END_HEADERS | END_STREAM, 1, hpack([("x-trailer", "1")])),
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("%d seeds in %s" % (len(SEEDS), out))


if __name__ == "__main__":
    main()
