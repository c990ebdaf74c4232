#!/usr/bin/python3
"""Soak benchmark: N minutes of mixed load against crpc-interop-server.

    /usr/bin/python3 bench/soak.py                    # 10 minutes
    /usr/bin/python3 bench/soak.py --seconds 40       # a quick try
    /usr/bin/python3 bench/soak.py --minutes 3 --out soak.md

Starts crpc-interop-server on 127.0.0.1 (--port=0) and crpc-soak-client
(bench/crpc_soak_client.c: all four RPC kinds, random cancels and deadlines,
channels coming and going, one client that never reads) against it. Every
10 s it samples the server's RSS, descriptors and threads from /proc and
the client's counters; at the end it prints a summary and a verdict on
whether RSS stayed flat after warm-up (stdout, and Markdown to --out).

Not a test: nothing runs it from ctest or scripts/test.sh. Exit status 0
when the run completed and every verdict is good, 1 otherwise, 2 on a usage
or setup error.
"""

import argparse
import collections
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
         "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
         "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
         "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
         "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"]
# RSS may move by this much after warm-up and still count as flat: the
# output budgets let a never-read connection hold up to 4 MiB, and glibc's
# per-thread arenas breathe with the worker count.
FLAT_PCT = 10.0


def find_binary(build, rel):
    path = os.path.join(build, rel)
    if not os.access(path, os.X_OK):
        sys.exit("soak: %s not found; build first: cmake -S . -B build-soak "
                 "-DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build "
                 "build-soak -j2" % path)
    return path


def proc_sample(pid):
    """RSS (KiB), open descriptors and threads of |pid|, from /proc."""
    rss = threads = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir("/proc/%d/fd" % pid))
    return rss, fds, threads


def readline_within(pipe, seconds):
    """One line from |pipe|, or None if none arrives within |seconds| (the
    other side is hung) or at end of file."""
    ready, _, _ = select.select([pipe], [], [], seconds)
    if not ready:
        return None
    line = pipe.readline()
    return line or None


def totals(stats):
    """Calls finished, non-OK, and unexpected (not what the call's plan
    asked for), over every kind."""
    done = sum(sum(by.values()) for by in stats["done"].values())
    ok = sum(by.get("OK", 0) for by in stats["done"].values())
    unexpected = sum(stats["unexpected"].values())
    return done, done - ok, unexpected


def fmt_kib(k):
    return "%.1f MiB" % (k / 1024.0)


def slope_kib_per_min(points):
    """Least-squares slope of (seconds, KiB) points, in KiB per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return 0.0
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    return sxy / sxx * 60.0


def flatness(samples, warmup, total, key):
    """(value after warm-up, max over the last half, growth, growth %,
    slope per minute after warm-up) of sample field |key|."""
    after = [s for s in samples if s["t"] >= warmup]
    if not after:
        return None
    base = after[0][key]
    last = [s[key] for s in samples if s["t"] >= total / 2.0] or [base]
    peak = max(last)
    growth = peak - base
    pct = 100.0 * growth / base if base else 0.0
    slope = slope_kib_per_min([(s["t"], s[key]) for s in after])
    return base, peak, growth, pct, slope


def summarise_stderr(path, limit=12):
    """Distinct lines of a log (numbers folded to N), most frequent
    first."""
    counts = collections.Counter()
    try:
        with open(path, errors="replace") as f:
            for line in f:
                counts[re.sub(r"\d+", "N", line.rstrip())] += 1
    except OSError:
        pass
    return counts.most_common(limit), sum(counts.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seconds", type=float,
                    help="run length in seconds (overrides --minutes)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-soak"),
                    help="build directory (default: build-soak)")
    ap.add_argument("--threads", type=int, default=4,
                    help="client worker threads (plus the never-read "
                         "client and the canceller)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--interval", type=float, default=10.0,
                    help="seconds between samples")
    ap.add_argument("--warmup", type=float,
                    help="seconds of warm-up (default 60, or a third of "
                         "a run shorter than 3 minutes)")
    ap.add_argument("--out", help="also write the report here (Markdown)")
    args = ap.parse_args()

    total = args.seconds if args.seconds else args.minutes * 60.0
    warmup = args.warmup if args.warmup is not None else min(60.0, total / 3)
    server_bin = find_binary(args.build,
                             "examples/interop/crpc-interop-server")
    client_bin = find_binary(args.build, "bench/crpc-soak-client")
    logdir = tempfile.mkdtemp(prefix="crpc-soak-")
    server_log = os.path.join(logdir, "server.stderr")
    client_log = os.path.join(logdir, "client.stderr")

    env = dict(os.environ)
    # The server's own warnings and errors (crpc logs them only with
    # CRPC_LOG set) go to its stderr file, summarised at the end.
    env.setdefault("CRPC_LOG", "warn")
    server = subprocess.Popen([server_bin, "--port=0"],
                              stdout=subprocess.PIPE,
                              stderr=open(server_log, "w"), env=env,
                              text=True)
    # The server prints its port once it listens: that line is the sign it
    # is ready.
    line = readline_within(server.stdout, 30)
    if not line or not line.strip().isdigit():
        server.kill()
        sys.exit("soak: the server printed no port (see %s)" % server_log)
    port = int(line)
    baseline = proc_sample(server.pid)

    client = subprocess.Popen(
        [client_bin, "--target=127.0.0.1:%d" % port,
         "--threads=%d" % args.threads, "--seed=%d" % args.seed],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=open(client_log, "w"), text=True)

    problems = []
    samples = []
    stats = None
    start = time.monotonic()
    print("crpc soak: server pid %d on 127.0.0.1:%d, %g s, %d client "
          "threads, warm-up %g s; logs in %s" %
          (server.pid, port, total, args.threads, warmup, logdir))
    print("server before load: RSS %s, %d fds, %d threads" %
          (fmt_kib(baseline[0]), baseline[1], baseline[2]))
    print("%6s %10s %5s %7s %10s %8s %8s %6s" %
          ("t(s)", "RSS(KiB)", "fds", "threads", "calls", "calls/s",
           "non-OK", "unexp"))
    prev_done, prev_t, prev_moving = 0, 0.0, 0
    i = 0
    while True:
        i += 1
        t_next = min(i * args.interval, total)
        # Pacing of the 10 s samples (not synchronisation).
        delay = start + t_next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = time.monotonic() - start
        if server.poll() is not None:
            problems.append("the server exited with %d at t=%.0f s" %
                            (server.returncode, t))
            break
        if client.poll() is not None:
            problems.append("the client exited with %d at t=%.0f s" %
                            (client.returncode, t))
            break
        rss, fds, threads = proc_sample(server.pid)
        client.stdin.write("s\n")
        client.stdin.flush()
        line = readline_within(client.stdout, 30)
        if line is None:
            problems.append("the client did not report at t=%.0f s" % t)
            break
        stats = json.loads(line)
        done, failed, unexpected = totals(stats)
        rate = (done - prev_done) / (t - prev_t) if t > prev_t else 0.0
        # Progress of the workers' calls (the never-read client finishes
        # a call only once a minute or so).
        moving = done - sum(stats["done"]["never_read"].values())
        if args.threads > 0 and moving == prev_moving:
            problems.append("no call finished between t=%.0f s and "
                            "t=%.0f s (a hang?)" % (prev_t, t))
        prev_done, prev_t, prev_moving = done, t, moving
        samples.append({"t": t, "rss": rss, "fds": fds, "threads": threads,
                        "done": done, "failed": failed,
                        "unexpected": unexpected, "rate": rate})
        print("%6.0f %10d %5d %7d %10d %8.0f %8d %6d" %
              (t, rss, fds, threads, done, rate, failed, unexpected),
              flush=True)
        if t_next >= total:
            break

    # Stop the load: the client finishes its calls in progress and reports
    # threads that did not (a hang).
    try:
        client.stdin.write("q\n")
        client.stdin.flush()
    except BrokenPipeError:
        pass
    line = readline_within(client.stdout, 60)
    if line:
        stats = json.loads(line)
        if stats["stuck"]:
            problems.append("client threads stuck at the stop: " +
                            "; ".join(stats["stuck"]))
    else:
        problems.append("the client gave no final report within 60 s")
    try:
        client.wait(timeout=30)
    except subprocess.TimeoutExpired:
        client.kill()
        client.wait()
        problems.append("the client did not exit; killed")
    if client.returncode not in (0, None):
        problems.append("the client exited with %d" % client.returncode)

    # After the load: the connections' descriptors should go back to the
    # baseline once the server has seen them close. Polled, since no event
    # tells another process's descriptor count.
    idle = None
    settle = None
    if server.poll() is None:
        t0 = time.monotonic()
        while True:
            idle = proc_sample(server.pid)
            if idle[1] <= baseline[1] or time.monotonic() - t0 > 10:
                break
            time.sleep(0.1)
        settle = time.monotonic() - t0
        if idle[1] > baseline[1]:
            problems.append("%d descriptors still open 10 s after the load "
                            "(%d before it)" % (idle[1], baseline[1]))

    # A clean shutdown: SIGTERM, exit 0 within the grace period.
    shutdown = None
    if server.poll() is None:
        t0 = time.monotonic()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
            shutdown = time.monotonic() - t0
            if server.returncode != 0:
                problems.append("the server exited %d after SIGTERM" %
                                server.returncode)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            problems.append("the server did not exit within 20 s of "
                            "SIGTERM; killed")

    report, good = render(args, total, warmup, baseline, samples, stats, idle,
                    settle, shutdown, problems, server_log, client_log)
    print()
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report + "\n")
    return 0 if good else 1


def render(args, total, warmup, baseline, samples, stats, idle, settle,
           shutdown, problems, server_log, client_log):
    out = []
    w = out.append
    w("## crpc soak: %g s, %d client threads, seed %d" %
      (total, args.threads, args.seed))
    w("")
    w("Server crpc-interop-server on 127.0.0.1 (--port=0); load from "
      "crpc-soak-client: every RPC kind, random deadlines and cancels, "
      "channels coming and going, one client that never reads. Warm-up: "
      "first %g s." % warmup)
    w("")
    w("| t (s) | RSS (KiB) | fds | threads | calls done | calls/s | "
      "non-OK | unexpected |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|")
    w("| before | %d | %d | %d | 0 | | | |" % baseline)
    for s in samples:
        w("| %.0f | %d | %d | %d | %d | %.0f | %d | %d |" %
          (s["t"], s["rss"], s["fds"], s["threads"], s["done"], s["rate"],
           s["failed"], s["unexpected"]))
    if idle:
        w("| after (idle, %.1f s) | %d | %d | %d | | | | |" %
          ((settle,) + tuple(idle)))
    w("")

    verdicts = []
    if samples:
        for key, name, unit in (("rss", "RSS", "KiB"), ("fds", "fds", ""),
                                ("threads", "threads", "")):
            f = flatness(samples, warmup, total, key)
            if f is None:
                continue
            base, peak, growth, pct, slope = f
            if key == "rss":
                flat = pct <= FLAT_PCT
                verdicts.append(flat)
                w("**RSS: %s.** After warm-up %d KiB (%s); max of the last "
                  "half %d KiB (%s): growth %+d KiB (%+.1f %%; flat means "
                  "at most %g %%); least-squares slope after warm-up "
                  "%+.0f KiB/min." %
                  ("flat" if flat else "GROWING", base, fmt_kib(base), peak,
                   fmt_kib(peak), growth, pct, FLAT_PCT, slope))
            else:
                # Descriptors and threads follow the load (connections
                # open, workers busy); what matters is that they return to
                # the baseline when it stops (checked after the load).
                w("**%s:** %d after warm-up, max %d in the last half "
                  "(%+d)." % (name, base, peak, growth))
            w("")
    if idle:
        w("**After the load:** %d fds (%d before it), %d threads (%d "
          "before), RSS %d KiB." % (idle[1], baseline[1], idle[2],
                                     baseline[2], idle[0]))
        w("")
    if shutdown is not None:
        w("**Shutdown:** SIGTERM to exit in %.2f s." % shutdown)
        w("")

    if stats:
        kinds = list(stats["done"].keys())
        used = [c for c in CODES
                if any(stats["done"][k].get(c) for k in kinds)]
        w("Calls by kind and status (started; finished by status):")
        w("")
        w("| kind | started | " + " | ".join(used) + " |")
        w("|---|---:|" + "---:|" * len(used))
        for k in kinds:
            w("| %s | %d | " % (k, stats["started"][k]) +
              " | ".join(str(stats["done"][k].get(c, 0)) for c in used) +
              " |")
        w("")
        done, failed, unexpected = totals(stats)
        w("%d calls finished, %d not OK (deadlines, cancels and echoed "
          "statuses the load asks for), %d unexpected (not what the "
          "call's plan allowed)%s; %d channels opened; %d wrong "
          "payloads; %d start errors." %
          (done, failed, unexpected,
           ": " + ", ".join("%s %d" % kv
                            for kv in stats["unexpected"].items())
           if unexpected else "",
           stats["channels"], stats["bad_payload"], stats["start_errors"]))
        w("")
        if stats["samples"]:
            w("Unexpected outcomes (first %d distinct):" %
              len(stats["samples"]))
            w("")
            for s in stats["samples"]:
                w("- %d x `%s`" % (s["n"], s["what"]))
            w("")
        if unexpected or stats["bad_payload"] or stats["start_errors"]:
            verdicts.append(False)

    for name, path in (("server", server_log), ("client", client_log)):
        lines, n = summarise_stderr(path)
        if n:
            w("%s stderr: %d lines (%s); most frequent, digits as N:" %
              (name.capitalize(), n, path))
            w("")
            for text, count in lines:
                w("- %d x `%s`" % (count, text[:200]))
            w("")

    if problems:
        w("**Problems:**")
        w("")
        for p in problems:
            w("- " + p)
        w("")
    good = not problems and all(verdicts)
    w("**Verdict: %s.**" % ("PASS" if good else "FAIL"))
    return "\n".join(out), good


if __name__ == "__main__":
    sys.exit(main())
