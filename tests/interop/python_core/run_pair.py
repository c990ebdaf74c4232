#!/usr/bin/python3
"""Runs one interop pairing: a server, then a client against it.

  run_pair.py [--expect=REGEX]... [--client-rc=N] [--timeout=SECONDS]
              --server SERVER_ARGV... --client CLIENT_ARGV...

The server must print a line ending in "listening on HOST:PORT" on stdout
(it is started on port 0 by the caller's arguments). The driver waits for
that line, never for a guessed time, then runs the client with "{port}" and
"{target}" (127.0.0.1:PORT) substituted in its arguments. The client's
output must match every --expect regex, and its exit code must be
--client-rc (default 0). Finally the server gets SIGTERM and must exit 0
within 20 s (this checks clean shutdown, and leak reports under ASan).
"--server none" runs the client alone (for checks that need no server).
Exits 0 on success, 1 otherwise.
"""

import os
import re
import select
import signal
import subprocess
import sys
import threading
import time

PORT_LINE = re.compile(r"listening on (\S+):(\d+)\s*$")


def log(msg):
    print("run_pair: " + msg, flush=True)


def parse_args(argv):
    opts = {"expect": [], "client_rc": 0, "timeout": 50.0}
    try:
        si = argv.index("--server")
        ci = argv.index("--client")
    except ValueError:
        sys.exit("usage: run_pair.py [opts] --server ARGV... --client ARGV...")
    if not si < ci:
        sys.exit("--server must come before --client")
    for a in argv[:si]:
        if a.startswith("--expect="):
            opts["expect"].append(re.compile(a[len("--expect="):], re.M))
        elif a.startswith("--client-rc="):
            opts["client_rc"] = int(a[len("--client-rc="):])
        elif a.startswith("--timeout="):
            opts["timeout"] = float(a[len("--timeout="):])
        else:
            sys.exit("unknown option " + a)
    server, client = argv[si + 1:ci], argv[ci + 1:]
    if not server or not client:
        sys.exit("empty server or client command")
    return opts, server, client


def wait_for_port(proc, deadline):
    """Reads the server's stdout until the port line; None on EOF/timeout."""
    buf = b""
    fd = proc.stdout.fileno()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            log("timed out waiting for the server's port line")
            return None, buf
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            log("server exited before reporting its port (rc=%s)"
                % proc.wait())
            return None, buf
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            text = line.decode("utf-8", "replace")
            print("[server] " + text, flush=True)
            m = PORT_LINE.search(text)
            if m:
                return int(m.group(2)), buf


def drain(proc, rest):
    """Copies the rest of the server's stdout to ours (keeps the pipe
    from filling up and blocking the server)."""
    if rest:
        sys.stdout.write("[server] " + rest.decode("utf-8", "replace"))
    for line in iter(proc.stdout.readline, b""):
        sys.stdout.write("[server] " + line.decode("utf-8", "replace"))
        sys.stdout.flush()


def stop_server(proc):
    if proc.poll() is not None:
        log("server died during the test (rc=%d)" % proc.returncode)
        return False
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        log("server did not exit within 20 s of SIGTERM; killing it")
        proc.kill()
        proc.wait()
        return False
    if rc != 0:
        log("server exited with %d after SIGTERM" % rc)
        return False
    return True


def main():
    opts, server_argv, client_argv = parse_args(sys.argv[1:])
    deadline = time.monotonic() + opts["timeout"]
    server = None
    t = None
    if server_argv != ["none"]:
        log("server: " + " ".join(server_argv))
        server = subprocess.Popen(server_argv, stdout=subprocess.PIPE)
    ok = True
    try:
        if server is not None:
            port, rest = wait_for_port(server, deadline)
            if port is None:
                return 1
            t = threading.Thread(target=drain, args=(server, rest),
                                 daemon=True)
            t.start()
            target = "127.0.0.1:%d" % port
            client_argv = [a.replace("{port}", str(port))
                           .replace("{target}", target) for a in client_argv]
        log("client: " + " ".join(client_argv))
        try:
            res = subprocess.run(client_argv, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE,
                                 timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as e:
            for name, data in (("stdout", e.stdout), ("stderr", e.stderr)):
                if data:
                    print("[client %s] %s" % (name, data.decode("utf-8",
                                                                "replace")))
            log("client timed out")
            return 1
        out = res.stdout.decode("utf-8", "replace")
        err = res.stderr.decode("utf-8", "replace")
        for line in out.splitlines():
            print("[client] " + line)
        for line in err.splitlines():
            print("[client stderr] " + line)
        sys.stdout.flush()
        if res.returncode != opts["client_rc"]:
            log("client exited with %d, want %d"
                % (res.returncode, opts["client_rc"]))
            ok = False
        for rx in opts["expect"]:
            if not rx.search(out) and not rx.search(err):
                log("client output does not match %r" % rx.pattern)
                ok = False
        if server is not None:
            if not stop_server(server):
                ok = False
            t.join(timeout=5)
    finally:
        if server is not None and server.poll() is None:
            server.kill()
            server.wait()
    log("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
