"""Password guessing across connections (issue 9): failed logins throttled per source IP and per
account, blocked attempts answered exactly like wrong passwords, a fair hashing queue, the
same answer and timing for unknown users, and log lines fail2ban matches.

Loopback is trusted (never throttled) by default, so these servers set `trusted_networks = []`;
127.0.0.N addresses are distinct sources on Linux (the client binds to one before connecting).

`python3 tests/hostile/test_throttle.py` (outside pytest) measures guesses per minute from one
IP and from 100 IPs, and a fresh login's latency during the flood; MAILKEEP_BIN picks the binary.
"""

import configparser
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from mkserver import PASSWORD, ROOT, Server, assert_responsive  # noqa: E402

FILTER = ROOT / "docs" / "fail2ban" / "filter.d" / "mailkeep.conf"
JAIL = ROOT / "docs" / "fail2ban" / "jail.d" / "mailkeep.local"
FAILED = b"NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"


def throttled(**auth):
    """Config text: loopback not trusted, no fixed failure delay, many failures per connection."""
    settings = {"trusted_networks": "[]", "failure_delay_ms": 0, "max_failures": 1000}
    settings.update(auth)
    return "[auth]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())


def quoted(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Client:
    """One IMAP connection from a chosen 127.0.0.N source address."""

    def __init__(self, server, source="127.0.0.1", timeout=20.0):
        self.s = socket.create_connection(server.imap, timeout=timeout, source_address=(source, 0))
        self.f = self.s.makefile("rb")
        greeting = self.f.readline()
        assert greeting.startswith(b"* OK"), greeting
        self.n = 0

    def login(self, user, password):
        """LOGIN; returns (tagged answer without its tag, seconds)."""
        self.n += 1
        tag = f"a{self.n}".encode()
        start = time.monotonic()
        self.s.sendall(tag + f" LOGIN {quoted(user)} {quoted(password)}\r\n".encode())
        while True:
            line = self.f.readline()
            assert line, "connection closed"
            if line.startswith(tag + b" "):
                return line[len(tag) + 1:], time.monotonic() - start

    def close(self):
        self.s.close()


def login_once(server, user, password, source):
    c = Client(server, source)
    try:
        return c.login(user, password)
    finally:
        c.close()


def auth_lines(server, event=None):
    lines = [line for line in (server.dir / "server.log").read_text().splitlines()
             if "mailkeep_auth" in line]
    if event:
        lines = [line for line in lines if f"event={event} " in line or f'"event":"{event}"' in line]
    return lines


def wait_for_log(server, event, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while len(auth_lines(server, event)) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return auth_lines(server, event)


def stats(xs):
    xs = sorted(xs)
    return statistics.median(xs), xs[int(len(xs) * 0.9) - 1]


def test_source_is_blocked_across_connections_and_accounts(make_server):
    server = make_server(extra_config=throttled(throttle_ip_failures=6, throttle_account_failures=0))
    src = "127.0.0.7"
    # Six failures from one source over three connections, against different names.
    for i in range(3):
        c = Client(server, src)
        for name in (f"nobody{i}", "bob"):
            assert c.login(name, "guess")[0] == FAILED
        c.close()
    # The source is blocked now: even alice's right password gets the wrong-password answer.
    answer, _ = login_once(server, "alice", PASSWORD, src)
    assert answer == FAILED
    blocked = wait_for_log(server, "auth_blocked", 1)
    assert f"ip={src} " in blocked[0] and 'user="alice"' in blocked[0], blocked
    # Another source is not held, during and after.
    assert login_once(server, "alice", PASSWORD, "127.0.0.8")[0].startswith(b"OK")
    assert_responsive(server)


def test_account_is_blocked_for_every_source_but_its_owners(make_server):
    server = make_server(extra_config=throttled(throttle_ip_failures=0, throttle_account_failures=4))
    # The owner logs in from 127.0.0.50 first: that source stays allowed.
    assert login_once(server, "alice", PASSWORD, "127.0.0.50")[0].startswith(b"OK")
    # Four guesses, each from another source (a botnet), against one account.
    for n in range(10, 14):
        assert login_once(server, "alice", f"guess{n}", f"127.0.1.{n}")[0] == FAILED
    # Any further attempt at alice is refused unchecked, whatever the source or password...
    for n in range(20, 23):
        assert login_once(server, "alice", PASSWORD, f"127.0.1.{n}")[0] == FAILED
    # ...and an unknown name is throttled the same way (its answers tell nothing).
    for n in range(30, 34):
        login_once(server, "ghost", "x", f"127.0.2.{n}")
    assert login_once(server, "ghost", "x", "127.0.2.40")[0] == FAILED
    assert len(wait_for_log(server, "auth_blocked", 4)) == 4
    # The owner's known source, and other accounts, are not held.
    assert login_once(server, "alice", PASSWORD, "127.0.0.50")[0].startswith(b"OK")
    assert login_once(server, "bob", PASSWORD, "127.0.1.20")[0].startswith(b"OK")


def test_blocked_attempt_looks_like_a_wrong_password(make_server):
    """Same bytes and the same time as a checked wrong password (the growing delay is off
    here so both are just the hash time); a blocked one costs no hash."""
    n = 24
    server = make_server(extra_config=throttled(
        throttle_ip_failures=n, throttle_account_failures=0, throttle_delay_ms=0))
    c = Client(server, "127.0.0.9")
    wrong = [c.login("alice", f"guess{i}") for i in range(n)]
    blocked = [c.login("alice", PASSWORD if i % 2 else f"guess{i}") for i in range(n)]
    c.close()
    assert {a for a, _ in wrong} == {FAILED}
    assert {a for a, _ in blocked} == {FAILED}
    assert len(wait_for_log(server, "auth_blocked", n)) == n
    assert len(auth_lines(server, "auth_failure")) == n
    w, b = stats([t for _, t in wrong]), stats([t for _, t in blocked])
    print(f"\nwrong password: median {w[0] * 1000:.1f} ms p90 {w[1] * 1000:.1f} ms; "
          f"blocked: median {b[0] * 1000:.1f} ms p90 {b[1] * 1000:.1f} ms")
    assert abs(w[0] - b[0]) < max(0.015, 0.5 * w[0]), (w, b)


def test_unknown_user_answer_and_timing_match_wrong_password(make_server):
    """200 tries each, on two connections at once (one per hashing thread)."""
    server = make_server(extra_config="[auth]\nfailure_delay_ms = 0\nmax_failures = 1000\n")
    tries = 200
    results = {}

    def run(key, user):
        c = Client(server)
        results[key] = [c.login(user, f"wrong{i}") for i in range(tries)]
        c.close()

    threads = [threading.Thread(target=run, args=("wrong", "alice")),
               threading.Thread(target=run, args=("unknown", "nosuchuser"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {a for a, _ in results["wrong"]} == {FAILED}
    assert {a for a, _ in results["unknown"]} == {FAILED}
    w = stats([t for _, t in results["wrong"]])
    u = stats([t for _, t in results["unknown"]])
    print(f"\nwrong password: median {w[0] * 1000:.1f} ms p90 {w[1] * 1000:.1f} ms; "
          f"unknown user: median {u[0] * 1000:.1f} ms p90 {u[1] * 1000:.1f} ms")
    assert abs(w[0] - u[0]) < max(0.010, 0.25 * w[0]), (w, u)


class _Addr:
    """What `Client` needs of a server, for the flood's child processes."""

    def __init__(self, imap):
        self.imap = imap


def _flood_proc(imap, sources, conns_per_source, stop, counter, user):
    server = _Addr(imap)

    def one(src):
        while not stop.is_set():
            try:
                c = Client(server, src, timeout=30)
                while not stop.is_set():
                    c.login(user, "guess")
                    with counter.get_lock():
                        counter.value += 1
            except (OSError, AssertionError):
                time.sleep(0.01)  # closed after max_failures: reconnect

    threads = [threading.Thread(target=one, args=(src,), daemon=True)
               for src in sources for _ in range(conns_per_source)]
    for t in threads:
        t.start()
    stop.wait()
    for t in threads:
        t.join(5)


class Flood:
    """Wrong-password LOGINs on many connections, in 4 child processes (so the measuring
    client in this process does not wait for Python's GIL behind hundreds of threads)."""

    def __init__(self, server, sources, conns_per_source, user="alice", procs=4):
        ctx = multiprocessing.get_context("fork")
        self.stop = ctx.Event()
        self.answers = ctx.Value("i", 0)
        self.procs = [ctx.Process(target=_flood_proc,
                                  args=(server.imap, sources[i::procs] if len(sources) >= procs
                                        else sources,
                                        conns_per_source if len(sources) >= procs
                                        else max(1, conns_per_source // procs),
                                        self.stop, self.answers, user), daemon=True)
                      for i in range(procs)]
        for p in self.procs:
            p.start()

    def finish(self):
        self.stop.set()
        for p in self.procs:
            p.join(15)
            if p.is_alive():
                p.kill()
        return self.answers.value


def test_flood_from_one_source_does_not_delay_other_logins(make_server):
    """64 connections from one IP guess as fast as they can (no blocking, to load the
    hashing queue); other users' first logins from other IPs still take well under 1 s."""
    users = [f"user{i}" for i in range(6)]
    server = make_server(
        users=("alice", *users),
        extra_config=throttled(throttle_ip_failures=0, throttle_account_failures=0,
                               throttle_delay_ms=0))
    flood = Flood(server, ["127.0.0.66"], 64)
    try:
        time.sleep(1.0)
        took = []
        for i, u in enumerate(users):
            answer, t = login_once(server, u, PASSWORD, f"127.0.3.{i + 1}")
            assert answer.startswith(b"OK"), answer
            took.append(t)
            assert_responsive(server)
        print(f"\nfirst logins during a 64-connection flood: {[round(t, 3) for t in took]} s; "
              f"{flood.answers.value} flood answers")
        # Target: under 1 s (measured about 0.05 s on an idle machine). One outlier is allowed
        # up to 2 s because this 2-core machine may be busy with other work during the test.
        assert sorted(took)[-2] < 1.0 and max(took) < 2.0, took
    finally:
        flood.finish()
    # Excess checks from the flood were refused without a hash (reason=busy).
    assert auth_lines(server, "auth_failure")
    assert_responsive(server)


def test_pop3_shares_the_throttle(make_server):
    server = make_server(
        extra_config='[pop3]\nlisten = ["127.0.0.1:0"]\n'
        + throttled(throttle_ip_failures=2, throttle_account_failures=0),
        wait_for=("pop3",))
    src = "127.0.0.12"
    c = Client(server, src)
    assert c.login("alice", "x")[0] == FAILED
    assert c.login("alice", "y")[0] == FAILED
    c.close()
    with socket.create_connection(server.pop3, timeout=10, source_address=(src, 0)) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        s.sendall(b"USER alice\r\n")
        assert f.readline().startswith(b"+OK")
        s.sendall(f"PASS {PASSWORD}\r\n".encode())
        assert f.readline() == b"-ERR [AUTH] Authentication failed.\r\n"
    line = wait_for_log(server, "auth_blocked", 1)[0]
    assert "proto=pop3" in line and f"ip={src} " in line


def fail2ban_regex():
    exe = shutil.which("fail2ban-regex")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("fail2ban-regex is missing (Debian package fail2ban)")
        pytest.skip("fail2ban-regex is not installed (Debian package fail2ban)")
    return exe


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_fail2ban_filter_matches_real_log_lines(make_server, fmt):
    exe = fail2ban_regex()
    server = make_server(extra_config=f'[log]\nformat = "{fmt}"\n'
                         + throttled(throttle_ip_failures=3, throttle_account_failures=0))
    src = "127.0.0.21"
    c = Client(server, src)
    # A user name crafted to look like another address must not be what is banned.
    for user in ("alice", "nobody", 'x" ip=192.0.2.99 y', "bob"):
        c.login(user, "wrong")
    c.close()
    assert login_once(server, "alice", PASSWORD, "127.0.0.22")[0].startswith(b"OK")
    wait_for_log(server, "auth_blocked", 1)
    wait_for_log(server, "auth_success", 1)
    log = server.dir / "server.log"
    out = subprocess.run([exe, "--print-all-matched", str(log), str(FILTER)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    matched = next(line for line in out.stdout.splitlines() if line.startswith("Lines:"))
    # Three failures and one blocked attempt match; the success and everything else do not.
    assert ", 4 matched," in matched, out.stdout
    ips = subprocess.run([exe, "-o", "<ip>", str(log), str(FILTER)],
                         capture_output=True, text=True, timeout=60).stdout.split()
    assert ips == [src] * 4, ips
    # The jail names the filter and is valid ini.
    jail = configparser.ConfigParser()
    jail.read(JAIL)
    assert jail["mailkeep"]["filter"] == "mailkeep"


# ---- measurement (not a test): python3 tests/hostile/test_throttle.py ----

def measure():
    """Guesses per minute against one account, from 1 IP (64 connections) and from 100 IPs
    (4 connections each), over 15 s each, with default settings except that loopback is not
    trusted; and fresh logins' latency from another IP during the flood."""
    new = "--before" not in sys.argv
    extra = '[auth]\ntrusted_networks = []\n' if new else ""
    if new and "--no-throttle" in sys.argv:  # the fair queue alone
        extra += "throttle_ip_failures = 0\nthrottle_account_failures = 0\n"
    for label, sources, per in (("1 IP x 64 conns", ["127.0.0.66"], 64),
                                ("100 IPs x 4 conns", [f"127.0.4.{i}" for i in range(1, 101)], 4)):
        users = [f"user{i}" for i in range(10)]
        server = Server(users=("alice", *users), extra_config=extra + "[limits]\nmax_connections_per_ip = 1000\n")
        try:
            flood = Flood(server, sources, per)
            secs = 15.0
            time.sleep(1.0)
            took = []
            for i, u in enumerate(users):
                _, t = login_once(server, u, PASSWORD, f"127.0.5.{i + 1}")
                took.append(t)
                time.sleep(0.3)
            time.sleep(max(0.0, secs - 1.0 - sum(took) - 0.3 * len(users)))
            answers = flood.finish()
            text = (server.dir / "server.log").read_text()
            checked = text.count("reason=password") if new else text.count("login failed")
            print(f"{label}: {answers * 60 / secs:.0f} answers/min, "
                  f"{checked * 60 / secs:.0f} checked guesses/min; other users' first logins: "
                  f"median {statistics.median(took):.3f} s, max {max(took):.3f} s")
        finally:
            server.cleanup()


def measure_timing(tries=200, threads=10):
    """Wrong password vs unknown user: `tries` each, from `threads` clients per kind at once
    (a new connection every 3 tries, as max_failures closes it), with the default delay."""
    server = Server()
    try:
        results = {"wrong": [], "unknown": []}

        def run(key, user, n):
            c = None
            for i in range(n):
                if c is None or i % 3 == 0:
                    if c:
                        c.close()
                    c = Client(server)
                answer, t = c.login(user, f"wrong{i}")
                assert answer == FAILED, answer
                results[key].append(t)
            c.close()

        ts = [threading.Thread(target=run, args=(k, u, tries // threads))
              for k, u in (("wrong", "alice"), ("unknown", "nosuchuser")) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for k, xs in results.items():
            m, p90 = stats(xs)
            print(f"{k}: {len(xs)} tries, median {m * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms")
    finally:
        server.cleanup()


if __name__ == "__main__":
    if "--timing" in sys.argv:
        measure_timing()
    else:
        measure()
