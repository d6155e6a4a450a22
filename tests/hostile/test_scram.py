"""SCRAM-SHA-256 exchanges from hostile clients: garbage at every step, a flood of attempts at
unknown users, many exchanges left half-way. Each answer is a tagged BAD/NO on a connection
that stays usable; a fresh client is answered within 1 s during and after
(`assert_responsive`); memory stays bounded.

Before SCRAM support (the binary before this change) every AUTHENTICATE SCRAM-SHA-256 got
`NO Unsupported authentication mechanism.`, so these tests fail there.
"""

import base64
import os
import socket
import threading
import time

from conftest import assert_responsive

FAST = "[auth]\nfailure_delay_ms = 0\nmax_failures = 100000\n"


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def connect(server, timeout=10.0):
    s = socket.create_connection(server.imap, timeout=timeout)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    return s, f


def send(s, f, line):
    s.sendall(line.encode() + b"\r\n")
    got = f.readline().decode()
    assert got, f"connection closed after {line[:60]!r}"
    return got.rstrip("\r\n")


def first(user="alice", nonce="abcdefgh"):
    return b64(f"n,,n={user},r={nonce}")


def test_garbage_at_every_step(make_server):
    server = make_server(extra_config=FAST)
    s, f = connect(server)
    failed = "NO [AUTHENTICATIONFAILED] Authentication failed"
    cases = [
        # client-first
        (f"a AUTHENTICATE SCRAM-SHA-256 {b64(bytes(range(256)))}", f"a {failed} (e=invalid-encoding)."),
        (f"a AUTHENTICATE SCRAM-SHA-256 {b64('n,,n=alice')}", f"a {failed} (e=invalid-encoding)."),
        (f"a AUTHENTICATE SCRAM-SHA-256 {b64('n,,n=al=ZZice,r=x')}",
         f"a {failed} (e=invalid-username-encoding)."),
        (f"a AUTHENTICATE SCRAM-SHA-256 {b64('p=tls-unique,,n=alice,r=x')}",
         f"a {failed} (e=channel-binding-not-supported)."),
        (f"a AUTHENTICATE SCRAM-SHA-256 {b64('n,,m=ext,n=alice,r=x')}",
         f"a {failed} (e=extensions-not-supported)."),
        (f"a AUTHENTICATE SCRAM-SHA-256 {b64('n,a=bob,n=alice,r=x')}",
         "a NO [AUTHORIZATIONFAILED] Authorization failed."),
        # A name and a nonce over 1 KiB (under the line limit before login): refused, not kept.
        (f"a AUTHENTICATE SCRAM-SHA-256 {first('u' * 1500, 'n' * 1500)}",
         f"a {failed} (e=invalid-encoding)."),
        # -PLUS is not offered without TLS.
        (f"a AUTHENTICATE SCRAM-SHA-256-PLUS {b64('p=tls-exporter,,n=alice,r=x')}",
         "a NO Unsupported authentication mechanism."),
    ]
    for line, want in cases:
        assert send(s, f, line) == want, line[:80]
    # client-final (given the combined nonce): not base64, garbage, a wrong nonce, a short
    # proof, a binding the client did not announce.
    proof = b64(os.urandom(32))
    finals = [
        (lambda n: "!!!", "BAD Invalid base64 data in continued response."),
        (lambda n: b64(bytes(range(256))), f"{failed} (e=invalid-encoding)."),
        (lambda n: b64(f"c=biws,r=wrong,p={proof}"), f"{failed} (e=other-error)."),
        (lambda n: b64(f"c=biws,r={n},p=AAAA"), f"{failed} (e=invalid-encoding)."),
        (lambda n: b64(f"c=eSws,r={n},p={proof}"),
         f"{failed} (e=channel-bindings-dont-match)."),
        (lambda n: b64(f"c=biws,r={n},p={proof}"), f"{failed}."),
    ]
    for final, want in finals:
        got = send(s, f, f"b AUTHENTICATE SCRAM-SHA-256 {first()}")
        assert got.startswith("+ "), got
        nonce = base64.b64decode(got[2:]).decode().split(",")[0][2:]
        assert send(s, f, final(nonce)) == f"b {want}"
    assert send(s, f, "c NOOP") == "c OK NOOP completed."
    s.close()
    assert_responsive(server)


def test_flood_of_unknown_users(make_server):
    server = make_server(extra_config=FAST)
    stop = threading.Event()
    counts = []

    def attacker():
        n = 0
        s, f = connect(server)
        while not stop.is_set():
            got = send(s, f, f"x AUTHENTICATE SCRAM-SHA-256 {first(os.urandom(6).hex(), 'nnnnnnnn')}")
            nonce = base64.b64decode(got[2:]).decode().split(",")[0][2:]
            got = send(s, f, b64(f"c=biws,r={nonce},p={b64(os.urandom(32))}"))
            assert got == "x NO [AUTHENTICATIONFAILED] Authentication failed.", got
            n += 1
        counts.append(n)
        s.close()

    base = server.rss_kib()
    threads = [threading.Thread(target=attacker) for _ in range(8)]
    for t in threads:
        t.start()
    worst = 0.0
    deadline = time.time() + 3
    while time.time() < deadline:
        worst = max(worst, assert_responsive(server))
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(30)
    grown = server.rss_kib() - base
    assert sum(counts) > 100, counts
    assert grown < 20 * 1024, f"RSS grew {grown} KiB during {sum(counts)} attempts"
    assert_responsive(server)
    print(f"{sum(counts)} SCRAM attempts in 3 s; worst fresh client {worst * 1000:.0f} ms; "
          f"RSS +{grown} KiB")


def test_many_exchanges_left_half_way(make_server):
    server = make_server(extra_config=FAST)
    base = server.rss_kib()
    conns = []
    for i in range(200):
        s, f = connect(server)
        got = send(s, f, f"h AUTHENTICATE SCRAM-SHA-256 {first(f'user{i}', 'n' * 1000)}")
        assert got.startswith("+ "), got
        conns.append(s)
    grown = server.rss_kib() - base
    assert_responsive(server)
    # 200 connections waiting for their client-final: a few KiB each.
    assert grown < 16 * 1024, f"RSS grew {grown} KiB for 200 waiting exchanges"
    for s in conns:
        s.close()
    assert_responsive(server)
    print(f"200 half-way SCRAM exchanges: RSS +{grown} KiB")
