#!/usr/bin/python3
"""Client-side load balancing on loopback (issue 10), with the example
programs: helloworld-server (--server_id tags each reply with an
x-served-by trailer) on 127.0.0.1, .2 and .3, and helloworld-client
(--lb_policy, --count, --print_calls: one line per call with the server
that answered).

  lb.py --mode=MODE --server=PATH --client=PATH

Modes:
  spread    round_robin over an ipv4: list, 3000 calls: each server within
            +-10% of a third.
  hosts     the same over a name with three addresses in a hosts file of
            the test's: the client runs in a mount namespace of its own
            (unshare -m) where /etc/hosts is that file (c-ares 1.18 reads
            no other path); exit 77 where unshare is not allowed.
  failover  a long round_robin run with wait-for-ready calls; one server
            is stopped (SIGTERM: it drains with GOAWAY, as a deleted pod
            does) mid-run, then started again on its address and port: no
            call fails, the dead server serves nothing while it is gone,
            and calls reach it again; the timeline is printed.
  crash     the same with SIGKILL and a retryPolicy: the call in flight
            on the killed server is retried elsewhere (without a policy
            it fails UNAVAILABLE, as in gRPC: the server may have run it).
  retry     one backend answers every call UNAVAILABLE (a grpcio server):
            with a retryPolicy every call succeeds; without one about a
            third fail; with every backend failing, retries stop at
            maxAttempts, and retryThrottling cuts them down.
  max_age   a long-lived round_robin client on a name (hosts file, as for
            hosts) that first lists one server; a second address is added
            and the first server's connections age out
            (--max_connection_age_ms): the client re-resolves on the GOAWAY
            and spreads over the new server.

Every process is killed on exit. Exit 0: passed; 77: skipped; 1: failed.
"""

import argparse
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

TIMEOUT = 60.0
SKIP = 77
procs = []


def log(msg):
    print("lb: " + msg, flush=True)


def fail(msg):
    log("FAIL: " + msg)
    sys.exit(1)


def cleanup():
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def read_line(p, what, timeout=TIMEOUT):
    """The next stdout line of |p| (None at its end), waiting at most
    |timeout|."""
    end = time.monotonic() + timeout
    buf = b""
    fd = p.stdout.fileno()
    while not buf.endswith(b"\n"):
        left = end - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            fail("%s: no output within %.0f s" % (what, timeout))
        b = os.read(fd, 1)
        if not b:
            return None if not buf else buf.decode().strip()
        buf += b
    return buf.decode().strip()


class Server:
    def __init__(self, path, host, port=0, sid=None, extra=()):
        self.host, self.sid = host, sid or host
        self.p = subprocess.Popen(
            [path, "--host=" + host, "--port=%d" % port,
             "--server_id=" + self.sid] + list(extra),
            stdout=subprocess.PIPE)
        procs.append(self.p)
        line = read_line(self.p, "server on " + host)
        if not line or "listening on" not in line:
            fail("server on %s: %r" % (host, line))
        self.port = int(line.rsplit(":", 1)[1])

    def kill(self):
        self.p.kill()
        self.p.wait(timeout=TIMEOUT)


def start_three(args, same_port=False, extra=()):
    s = [Server(args.server, "127.0.0.1", sid="s1", extra=extra)]
    for i in (2, 3):
        s.append(Server(args.server, "127.0.0.%d" % i,
                        port=s[0].port if same_port else 0, sid="s%d" % i,
                        extra=extra))
    return s


def ipv4(servers):
    return "ipv4:" + ",".join("%s:%d" % (s.host, s.port) for s in servers)


def client(args, target, extra, prefix=()):
    return subprocess.Popen(list(prefix) + [args.client, "--target=" + target]
                            + extra, stdout=subprocess.PIPE)


def run_calls(args, target, extra, prefix=()):
    """Runs the client to its end: (per-call lines, summary line)."""
    c = client(args, target, ["--print_calls"] + extra, prefix)
    procs.append(c)
    out, _ = c.communicate(timeout=TIMEOUT)
    lines = out.decode().splitlines()
    calls = [ln.split() for ln in lines if ln.startswith("call ")]
    summary = [ln for ln in lines if ln.startswith("calls=")]
    return calls, summary[0] if summary else "", c.returncode


def served_by(calls):
    counts = {}
    for c in calls:
        counts[c[4]] = counts.get(c[4], 0) + 1
    return counts


def check_spread(counts, n, what):
    log("%s: %s" % (what, ", ".join("%s=%d" % kv for kv in
                                    sorted(counts.items()))))
    for sid in ("s1", "s2", "s3"):
        got = counts.get(sid, 0)
        if abs(got - n / 3) > n / 30:
            fail("%s: %s served %d of %d calls (want %d +-10%%)" %
                 (what, sid, got, n, n // 3))


def unshare_ok():
    return subprocess.call(["unshare", "-m", "true"],
                           stderr=subprocess.DEVNULL) == 0


def hosts_prefix(path):
    """A command prefix that runs the rest with /etc/hosts bound to
    |path| in a mount namespace of its own."""
    return ["unshare", "-m", "sh", "-c",
            'mount --bind "$0" /etc/hosts && exec "$@"', path]


def write_hosts(path, ips, name):
    with open("/etc/hosts") as f:
        base = f.read()
    with open(path + ".new", "w") as f:
        f.write(base + "".join("%s %s\n" % (ip, name) for ip in ips))
    # in place: the bind mount follows the file, not a name
    with open(path, "r+") as f, open(path + ".new") as g:
        f.seek(0)
        f.write(g.read())
        f.truncate()


# ---- modes ----

def mode_spread(args):
    servers = start_three(args)
    n = 3000
    calls, summary, rc = run_calls(args, ipv4(servers), [
        "--lb_policy=round_robin", "--count=%d" % n])
    log(summary)
    if rc != 0 or len(calls) != n:
        fail("calls failed: %s" % summary)
    # the first calls may go out before every subchannel is READY
    check_spread(served_by(calls[30:]), n - 30, "ipv4: list")


def mode_hosts(args):
    if not unshare_ok():
        log("unshare -m is not allowed here (needs root): skipped")
        sys.exit(SKIP)
    servers = start_three(args, same_port=True)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "hosts")
        open(path, "w").close()
        write_hosts(path, ["127.0.0.1", "127.0.0.2", "127.0.0.3"],
                    "backends.crpc.test")
        n = 3000
        calls, summary, rc = run_calls(
            args, "dns:///backends.crpc.test:%d" % servers[0].port,
            ["--lb_policy=round_robin", "--count=%d" % n],
            hosts_prefix(path))
    log(summary)
    if rc != 0 or len(calls) != n:
        fail("calls failed: %s" % summary)
    check_spread(served_by(calls[30:]), n - 30, "hosts-file name")


def now_ms():
    return int(time.monotonic() * 1000)  # the client's clock too


def mode_failover(args, hard=False):
    """SIGTERM (a pod deleted: the server drains with GOAWAY) or, |hard|,
    SIGKILL (a crash: the call in flight there is lost unless a retry
    policy sends it elsewhere, gRPC's answer to that)."""
    servers = start_three(args)
    extra = ["--service_config=" + RETRY % (3, "")] if hard else []
    c = client(args, ipv4(servers), [
        "--lb_policy=round_robin", "--count=1000000", "--wait_for_ready",
        "--timeout_ms=20000", "--print_calls"] + extra)
    procs.append(c)
    phase, t_kill, t_back, n = "before", None, None, 0
    last_s2, first_back, after_kill, late = None, None, {}, 0
    while True:
        line = read_line(c, "client")
        if line is None:
            fail("the client ended early")
        f = line.split()
        if f[0] != "call":
            continue
        n += 1
        ms, code, sid = int(f[2]), f[3], f[4]
        if code != "OK":
            fail("call %s failed: %s (%s)" % (f[1], code, line))
        if sid == "s2" and phase != "back":
            last_s2 = ms
        if phase == "before" and n == 2000:
            if hard:
                servers[1].kill()  # SIGKILL, and reaped
            else:
                servers[1].p.send_signal(signal.SIGTERM)
                servers[1].p.wait(timeout=TIMEOUT)  # drained and gone
            t_kill, phase = now_ms(), "dead"
            log("%s s2 (t=0)" % ("SIGKILLed" if hard else
                                 "stopped (SIGTERM)"))
        elif phase == "dead":
            if ms > t_kill:  # a call that ended after the kill
                after_kill[sid] = after_kill.get(sid, 0) + 1
                if sid == "s2":
                    late += 1
            if sum(after_kill.values()) == 2000:
                servers[1] = Server(args.server, "127.0.0.2",
                                    port=servers[1].port, sid="s2")
                t_back, phase = now_ms(), "back"
                log("restarted s2 on its port at t=%d ms" % (t_back - t_kill))
        elif phase == "back":
            if sid == "s2":
                first_back = ms
                break
            if now_ms() - t_back > 30000:
                fail("s2 got no call within 30 s of its restart")
    c.kill()
    c.wait()
    if late:
        fail("%d calls ended at s2 after it was killed" % late)
    log("failover: %d calls ended after the kill, none failed, none at s2: "
        "%s" % (sum(after_kill.values()), after_kill))
    log("timeline: last call served by s2 at t=%d ms; s2 restarted at "
        "t=%d ms; its first call again at t=%d ms (%d ms after the "
        "restart, within the client's reconnect backoff)" %
        (last_s2 - t_kill, t_back - t_kill, first_back - t_kill,
         first_back - t_back))


UNAVAILABLE_SERVER = r'''
import sys, threading, grpc
from concurrent import futures
attempts = 0
lock = threading.Lock()
def say_hello(req, ctx):
    global attempts
    with lock:
        attempts += 1
    ctx.abort(grpc.StatusCode.UNAVAILABLE, "this backend is down")
h = grpc.method_handlers_generic_handler("helloworld.Greeter", {
    "SayHello": grpc.unary_unary_rpc_method_handler(say_hello)})
s = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                handlers=[h])
port = s.add_insecure_port(sys.argv[1] + ":0")
s.start()
print("listening on %s:%d" % (sys.argv[1], port), flush=True)
sys.stdin.read()
print("attempts %d" % attempts, flush=True)
s.stop(0)
'''


class DownServer:
    """A grpcio Greeter that answers UNAVAILABLE and counts attempts."""

    def __init__(self, host, sid):
        self.host, self.sid = host, sid
        self.p = subprocess.Popen(["/usr/bin/python3", "-c",
                                   UNAVAILABLE_SERVER, host],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE)
        procs.append(self.p)
        line = read_line(self.p, "grpcio server")
        if not line or "listening on" not in line:
            fail("grpcio server: %r" % line)
        self.port = int(line.rsplit(":", 1)[1])

    def attempts(self):
        self.p.stdin.close()
        out = self.p.stdout.read().decode()
        self.p.wait(timeout=TIMEOUT)
        for ln in out.splitlines():
            if ln.startswith("attempts "):
                return int(ln.split()[1])
        fail("grpcio server printed no count: %r" % out)


RETRY = ('{"methodConfig":[{"name":[{"service":"helloworld.Greeter"}],'
         '"retryPolicy":{"maxAttempts":%d,"initialBackoff":"0.01s",'
         '"maxBackoff":"0.05s","backoffMultiplier":2,'
         '"retryableStatusCodes":["UNAVAILABLE"]}}]%s}')
THROTTLE = ',"retryThrottling":{"maxTokens":10,"tokenRatio":0.1}'


def mode_retry(args):
    good = [Server(args.server, "127.0.0.1", sid="s1"),
            Server(args.server, "127.0.0.2", sid="s2")]
    down = DownServer("127.0.0.3", "down")
    target = "ipv4:127.0.0.1:%d,127.0.0.2:%d,127.0.0.3:%d" % (
        good[0].port, good[1].port, down.port)
    n = 300
    _, plain, _ = run_calls(args, target, ["--lb_policy=round_robin",
                                           "--count=%d" % n])
    log("no retry policy: " + plain)
    failed = int(plain.split("failed=")[1].split()[0])
    if not n / 5 <= failed <= n / 2:
        fail("without retries %d of %d calls failed (want about a third)" %
             (failed, n))
    _, retried, rc = run_calls(args, target, [
        "--lb_policy=round_robin", "--count=%d" % n,
        "--service_config=" + RETRY % (3, "")])
    log("retryPolicy maxAttempts 3: " + retried)
    if rc != 0 or "failed=0" not in retried:
        fail("with retries some calls still failed: " + retried)
    down.attempts()
    # every backend down: retries stop at maxAttempts; throttling cuts them
    only = DownServer("127.0.0.3", "down")
    m = 40
    _, allfail, _ = run_calls(args, "127.0.0.3:%d" % only.port, [
        "--count=%d" % m, "--service_config=" + RETRY % (3, "")])
    a = only.attempts()
    log("all down, maxAttempts 3: %s; the server saw %d attempts" %
        (allfail, a))
    if a != 3 * m:
        fail("want %d attempts (3 a call), the server saw %d" % (3 * m, a))
    only = DownServer("127.0.0.3", "down")
    _, throttled, _ = run_calls(args, "127.0.0.3:%d" % only.port, [
        "--count=%d" % m, "--service_config=" + RETRY % (3, THROTTLE)])
    t = only.attempts()
    log("all down, maxAttempts 3 + retryThrottling(10, 0.1): %s; the server "
        "saw %d attempts" % (throttled, t))
    if not m <= t < 3 * m:
        fail("throttled: want fewer than %d attempts, the server saw %d" %
             (3 * m, t))


def mode_max_age(args):
    if not unshare_ok():
        log("unshare -m is not allowed here (needs root): skipped")
        sys.exit(SKIP)
    first = Server(args.server, "127.0.0.1", sid="s1",
                   extra=["--max_connection_age_ms=500"])
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "hosts")
        open(path, "w").close()
        write_hosts(path, ["127.0.0.1"], "grow.crpc.test")
        c = client(args, "dns:///grow.crpc.test:%d" % first.port, [
            "--lb_policy=round_robin", "--count=1000000", "--wait_for_ready",
            "--timeout_ms=20000", "--print_calls",
            "--min_resolution_interval_ms=100"], hosts_prefix(path))
        procs.append(c)
        counts, n, added, t_add = {}, 0, False, None
        while True:
            line = read_line(c, "client")
            if line is None:
                fail("the client ended early")
            f = line.split()
            if f[0] != "call":
                continue
            n += 1
            if f[3] != "OK":
                fail("call failed: " + line)
            counts[f[4]] = counts.get(f[4], 0) + 1
            if n == 500 and not added:
                Server(args.server, "127.0.0.2", port=first.port, sid="s2")
                write_hosts(path, ["127.0.0.1", "127.0.0.2"],
                            "grow.crpc.test")
                added, t_add = True, int(f[2])
                log("added s2 to the name at client time %d ms" % t_add)
                counts = {}
            if added and counts.get("s2", 0) >= 200:
                log("s2 reached %d ms after it was added; since then: %s" %
                    (int(f[2]) - t_add, counts))
                break
            if added and int(f[2]) - t_add > 30000:
                fail("s2 got %d calls in 30 s" % counts.get("s2", 0))
        c.kill()
        c.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True,
                    choices=["spread", "hosts", "failover", "crash",
                             "retry", "max_age"])
    ap.add_argument("--server", required=True)
    ap.add_argument("--client", required=True)
    args = ap.parse_args()
    try:
        {"spread": mode_spread, "hosts": mode_hosts,
         "failover": mode_failover,
         "crash": lambda a: mode_failover(a, hard=True), "retry": mode_retry,
         "max_age": mode_max_age}[args.mode](args)
    finally:
        cleanup()
    log("PASS")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    main()
