#!/usr/bin/python3
"""The interop matrix: every test case of gRPC's interop descriptions, for
each (client, server) pair of implementations.

Each server is started once per pair on port 0 and prints the port it got on
a line of its own; each case is one run of the client program. Prints a table
of case x pair with PASS / FAIL / SKIP, the details of every failure, and a
last line "N passed, M failed". Exits 1 when anything failed.

  run_matrix.py --crpc-server B/crpc-interop-server \\
      --crpc-client B/crpc-interop-client --cpp-server ... --cpp-client ... \\
      --py-dir B/tests/interop/matrix/py [--pair crpc:cpp ...] [--case ...]

A pair is CLIENT:SERVER with CLIENT and SERVER one of crpc, cpp, python.
CLIENT may also be crpc-gzip or python-gzip: that client with
--default_compression=gzip, a channel that compresses every request (as
grpc-go and grpc-js clients can be set up to), which the server must accept
wherever the request does not say otherwise (expect_compressed). crpc-async
(client or server) is crpc with --async: the client's cases through the
callback API on a loop it drives, the server's methods with async handlers
on a loop its main thread drives. Without --pair: the issue's five pairs
(crpc client x every server, C++ and Python clients x crpc server).

With --tls-ca, --tls-cert and --tls-key every pair runs over TLS: servers
get --use_tls --tls_cert_file --tls_key_file, clients --use_tls
--use_test_ca --ca_file and --server_host_override=--tls-server-name (a
name the server certificate carries).
"""
import argparse
import ctypes
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

CASES = [
    'empty_unary', 'large_unary', 'client_compressed_unary',
    'server_compressed_unary', 'client_streaming',
    'client_compressed_streaming', 'server_streaming',
    'server_compressed_streaming', 'ping_pong', 'empty_stream',
    'custom_metadata', 'status_code_and_message', 'special_status_message',
    'unimplemented_method', 'unimplemented_service', 'cancel_after_begin',
    'cancel_after_first_response', 'timeout_on_sleeping_server', 'rpc_soak',
    'channel_soak',
]
# cacheable_unary is not run: it needs a caching proxy between client and
# server (the servers implement CacheableUnaryCall all the same).

DEFAULT_PAIRS = ['crpc:crpc', 'crpc:cpp', 'crpc:python', 'cpp:crpc',
                 'python:crpc']

# Clients that are another client with more flags: CLIENT -> (base, flags).
# They inherit the base's skips (SKIP_CLIENT below) and add their own.
CLIENT_VARIANTS = {
    'crpc-gzip': ('crpc', ['--default_compression=gzip']),
    'python-gzip': ('python', ['--default_compression=gzip']),
    'crpc-async': ('crpc', ['--async']),
}

# The same for servers: SERVER -> (base, flags).
SERVER_VARIANTS = {
    'crpc-async': ('crpc', ['--async']),
}

# Cases a peer cannot take part in, and why. Only outside code (grpcio)
# appears here; crpc must support every case.
SKIP_CLIENT = {
    'python': {
        'client_compressed_streaming':
            'grpcio cannot send one message of a compressed stream '
            'uncompressed',
    },
}
SKIP_SERVER = {
    'python': {
        'client_compressed_unary':
            'a grpcio servicer cannot tell whether a request was compressed',
        'client_compressed_streaming':
            'a grpcio servicer cannot tell whether a request was compressed',
    },
}

# Pairs that run only some cases: (client, server) -> (cases, why the
# others are skipped).
ONLY_CASES = {
    # The C++ peer server checks the compressed flag of every request, as
    # gRPC's own C++ interop server does: a compressed request whose
    # expect_compressed is absent or false fails INVALID_ARGUMENT. So a
    # compress-everything client can only run the cases that mark every
    # request, and those prove on the wire that crpc sends the messages it
    # is told to send uncompressed (per call, per message) uncompressed
    # under a gzip channel default, which crpc's server, following the
    # description, no longer checks.
    ('crpc-gzip', 'cpp'): (
        ('client_compressed_unary', 'client_compressed_streaming'),
        'the C++ peer server rejects a compressed request without '
        'expect_compressed (as gRPC C++ does)'),
}

SERVER_START_TIMEOUT = 30.0
SERVER_STOP_TIMEOUT = 15.0
CASE_TIMEOUT = 60.0


def impl_commands(args):
    py = [args.python] if args.python else [sys.executable]
    py_dir = args.py_dir
    servers = {
        'crpc': [args.crpc_server] if args.crpc_server else None,
        'cpp': [args.cpp_server] if args.cpp_server else None,
        'python': (py + [os.path.join(py_dir, 'interop_server.py')]
                   if py_dir else None),
    }
    clients = {
        'crpc': [args.crpc_client] if args.crpc_client else None,
        'cpp': [args.cpp_client] if args.cpp_client else None,
        'python': (py + [os.path.join(py_dir, 'interop_client.py')]
                   if py_dir else None),
    }
    for name, (base, flags) in CLIENT_VARIANTS.items():
        clients[name] = clients[base] + flags if clients[base] else None
    for name, (base, flags) in SERVER_VARIANTS.items():
        servers[name] = servers[base] + flags if servers[base] else None
    return clients, servers


def skip_reason(client, server, case):
    base = CLIENT_VARIANTS.get(client, (client, None))[0]
    server_base = SERVER_VARIANTS.get(server, (server, None))[0]
    only, why = ONLY_CASES.get((client, server), (None, None))
    if only is not None and case not in only:
        return why
    return (SKIP_CLIENT.get(client, {}).get(case) or
            SKIP_CLIENT.get(base, {}).get(case) or
            SKIP_SERVER.get(server, {}).get(case) or
            SKIP_SERVER.get(server_base, {}).get(case))


def _die_with_parent():
    """Child setup: SIGTERM when the driver dies (e.g. killed by a ctest
    timeout), so no server is left listening."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Server:
    """One server process on port 0; the port is read from its stdout."""

    def __init__(self, name, cmd, tls_args):
        self.name = name
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            cmd + ['--port=0'] + tls_args, stdout=subprocess.PIPE,
            stderr=self.err, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        self.port = self._read_port()

    def _read_port(self):
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        buf = b''
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [],
                                    deadline - time.monotonic())
            if not r:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break  # exited without printing a port
            buf += chunk
            while b'\n' in buf:
                line, buf = buf.split(b'\n', 1)
                if line.strip().isdigit():
                    return int(line.strip())
        return None

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM, then the exit status: a sanitizer report or a crash in
        shutdown is a failure of the pair."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(SERVER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = 'hung on SIGTERM'
        self.proc.stdout.close()
        return rc

    def stderr_tail(self, n=30):
        self.err.seek(0)
        lines = self.err.read().decode(errors='replace').splitlines()
        return '\n'.join(lines[-n:])


def run_case(client_cmd, port, case, args):
    cmd = client_cmd + ['--server_host=127.0.0.1', '--server_port=%d' % port,
                        '--test_case=' + case] + args.client_tls_args
    if case.endswith('_soak'):
        cmd += ['--soak_iterations=%d' % args.soak_iterations,
                '--soak_max_failures=0',
                '--soak_per_iteration_max_acceptable_latency_ms=%d' %
                args.soak_latency_ms,
                '--soak_overall_timeout_seconds=%d' % int(CASE_TIMEOUT / 2)]
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=CASE_TIMEOUT, preexec_fn=_die_with_parent)
        out = p.stdout.decode(errors='replace')
        ok = p.returncode == 0
        if not ok:
            out += '\n(exit status %d)' % p.returncode
    except subprocess.TimeoutExpired as e:
        ok = False
        out = ((e.stdout or b'').decode(errors='replace') +
               '\n(timed out after %.0f s)' % CASE_TIMEOUT)
    return ok, out.strip(), time.monotonic() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('--crpc-server')
    ap.add_argument('--crpc-client')
    ap.add_argument('--cpp-server')
    ap.add_argument('--cpp-client')
    ap.add_argument('--py-dir', help='directory of the Python peers and '
                    'their generated stubs')
    ap.add_argument('--python', default='/usr/bin/python3')
    ap.add_argument('--pair', action='append', help='CLIENT:SERVER')
    ap.add_argument('--case', action='append', help='default: every case')
    ap.add_argument('--soak-iterations', type=int, default=5)
    ap.add_argument('--soak-latency-ms', type=int, default=5000,
                    help='per-iteration bound (generous for sanitizers)')
    ap.add_argument('--tls-ca', help='PEM CA that signed --tls-cert')
    ap.add_argument('--tls-cert', help='PEM server certificate chain')
    ap.add_argument('--tls-key', help='PEM server private key')
    ap.add_argument('--tls-server-name', default='foo.test.google.fr',
                    help='a name in --tls-cert (default %(default)s)')
    args = ap.parse_args()

    tls = [args.tls_ca, args.tls_cert, args.tls_key]
    if any(tls) and not all(tls):
        ap.error('TLS needs all of --tls-ca, --tls-cert and --tls-key')
    if all(tls):
        server_tls_args = ['--use_tls=true',
                           '--tls_cert_file=' + args.tls_cert,
                           '--tls_key_file=' + args.tls_key]
        args.client_tls_args = ['--use_tls=true', '--use_test_ca=true',
                                '--ca_file=' + args.tls_ca,
                                '--server_host_override=' +
                                args.tls_server_name]
    else:
        server_tls_args = ['--use_tls=false']
        args.client_tls_args = ['--use_tls=false']

    cases = args.case or CASES
    for c in cases:
        if c not in CASES:
            ap.error('unknown case %s' % c)
    pairs = args.pair or DEFAULT_PAIRS
    clients, servers = impl_commands(args)
    for pair in pairs:
        cl, _, sv = pair.partition(':')
        if cl not in clients or sv not in servers:
            ap.error('bad pair %s (want CLIENT:SERVER of %s x %s)' % (
                pair, ', '.join(clients), ', '.join(servers)))
        if clients[cl] is None or servers[sv] is None:
            ap.error('pair %s: the program for %s is not given' % (
                pair, cl if clients[cl] is None else sv))

    results = {}   # (case, pair) -> PASS / FAIL / SKIP
    failures = []  # (pair, case, output)
    skips = {}     # reason -> [(pair, case)]
    for pair in pairs:
        cl, _, sv = pair.partition(':')
        label = '%s client x %s server%s' % (cl, sv,
                                             ' (TLS)' if all(tls) else '')
        print('== %s' % label, flush=True)
        server = Server(sv, servers[sv], server_tls_args)
        if server.port is None:
            rc = server.stop()
            out = 'server did not print a port (exit %s)\n%s' % (
                rc, server.stderr_tail())
            failures.append((pair, 'server start', out))
            for case in cases:
                results[(case, pair)] = 'FAIL'
            continue
        for case in cases:
            reason = skip_reason(cl, sv, case)
            if reason:
                results[(case, pair)] = 'SKIP'
                skips.setdefault(reason, []).append((pair, case))
                continue
            if not server.alive():
                results[(case, pair)] = 'FAIL'
                failures.append((pair, case, 'the server is gone'))
                continue
            ok, out, secs = run_case(clients[cl], server.port, case, args)
            results[(case, pair)] = 'PASS' if ok else 'FAIL'
            print('  %-28s %s  %.1fs' % (case, 'PASS' if ok else 'FAIL',
                                         secs), flush=True)
            if not ok:
                failures.append((pair, case, out))
        rc = server.stop()
        if rc != 0:
            # The pair's cases ran, but the server crashed, leaked or
            # hung on the way out: count that as one more failure.
            failures.append((pair, 'server exit',
                             'server exit status %s\n%s' % (
                                 rc, server.stderr_tail())))
            results[('(server exit)', pair)] = 'FAIL'
        else:
            results[('(server exit)', pair)] = 'PASS'
        if any(f[0] == pair for f in failures):
            tail = server.stderr_tail()
            if tail:
                failures.append((pair, 'server log (tail)', tail))

    rows = cases + ['(server exit)']
    width = max(len(r) for r in rows) + 2
    colw = max(max(len(p) for p in pairs), 6) + 2
    print()
    print('client:server'.ljust(width) +
          ''.join(p.ljust(colw) for p in pairs))
    for r in rows:
        print(r.ljust(width) + ''.join(
            results.get((r, p), '-').ljust(colw) for p in pairs))
    if skips:
        print('\nSKIP (not expressible with the peer, not run):')
        for reason, where in skips.items():
            print('  %s: %s' % (', '.join('%s %s' % w for w in where),
                                reason))
    real_failures = [f for f in failures if f[1] != 'server log (tail)']
    for pair, case, out in failures:
        print('\n--- %s: %s ---\n%s' % (pair, case, out))
    passed = sum(1 for v in results.values() if v == 'PASS')
    failed = sum(1 for v in results.values() if v == 'FAIL')
    if real_failures and failed == 0:
        failed = len(real_failures)
    print('\n%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
