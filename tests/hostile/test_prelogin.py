"""Connection-layer attacks: command size before and after login, spooling, deadlines, slow
readers, the per-IP limit (issue 7, items 1-3).

Each test fails on the server before these limits existed; each checks that a fresh client is
answered within 1 s during and after the attack (`assert_responsive`).
"""

import socket
import threading
import time

from conftest import PASSWORD, assert_responsive

KIB = 1024
MIB = 1024 * 1024


def connect(server, timeout=10.0, rcvbuf=None, source=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if source:
        s.bind((source, 0))
    s.settimeout(timeout)
    s.connect(server.imap)
    f = s.makefile("rb")
    greeting = f.readline()
    return s, f, greeting


def login(s, f, user="alice"):
    s.sendall(f"l LOGIN {user} {PASSWORD}\r\n".encode())
    while True:
        line = f.readline()
        assert line, "closed during login"
        if line.startswith(b"l "):
            assert line.startswith(b"l OK"), line
            return


def read_until_closed(s, f, limit=10.0):
    """Lines until EOF (or reset); fails if the connection is still open after `limit` s."""
    s.settimeout(limit)
    lines = []
    try:
        for line in f:
            lines.append(line)
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError(f"connection still open after {limit} s: {lines[-3:]}")
    return lines


def watch_rss(server, stop, peak):
    base = server.rss_kib()
    peak.append(base)
    while not stop.is_set():
        peak[0] = max(peak[0], server.rss_kib())
        time.sleep(0.02)


def test_literal_chain_before_login_is_refused_early(server):
    """Lines of 60 KiB, each ending in an empty `{0+}` literal, never end the command: once
    the server held all of it (600 MiB per connection for 5,000 lines). Now one command before
    login may have a few KiB: each long line is refused on its own."""
    assert_responsive(server)
    base = server.rss_kib()
    line = b"x" * (60 * KIB) + b" {0+}\r\n"
    per_conn = 200  # 12 MiB per connection
    conns = [connect(server) for _ in range(3)]

    def attack(s):
        try:
            s.sendall(b"a1 LOGIN ")
            for _ in range(per_conn):
                s.sendall(line)
            s.sendall(b"end\r\n")
        except OSError:
            pass  # closed by the server: fine too

    stop, peak = threading.Event(), []
    watcher = threading.Thread(target=watch_rss, args=(server, stop, peak))
    watcher.start()
    threads = [threading.Thread(target=attack, args=(s,)) for s, _, _ in conns]
    for t in threads:
        t.start()
    assert_responsive(server)
    for t in threads:
        t.join(30)
    assert_responsive(server)
    stop.set()
    watcher.join()
    growth_mib = (peak[0] - base) / KIB
    print(f"RSS growth during 3 x {per_conn} x 60 KiB chain: {growth_mib:.1f} MiB")
    assert growth_mib < 16, f"RSS grew by {growth_mib:.1f} MiB"
    for s, f, _ in conns:
        s.settimeout(5)
        first = f.readline()
        assert first.startswith(b"a1 BAD [LIMIT]") or first.startswith(b"* BAD"), first
        s.close()


def test_literal_chain_after_login_stops_at_the_command_budget(make_server):
    """After login one command holds at most `max_command_size` (1 MiB by default)."""
    server = make_server()
    s, f, _ = connect(server)
    login(s, f)
    base = server.rss_kib()
    line = b" x" * (30 * KIB) + b" {0+}\r\n"
    s.sendall(b"a2 SEARCH TEXT {0+}\r\n")
    sent = 0
    try:
        for _ in range(400):  # 24 MiB if nothing stopped it
            s.sendall(line)
            sent += len(line)
    except OSError:
        pass
    lines = read_until_closed(s, f)
    assert any(l.startswith(b"* BYE [LIMIT]") for l in lines), lines
    growth_mib = (server.rss_kib() - base) / KIB
    print(f"sent {sent / MIB:.1f} MiB, RSS growth {growth_mib:.1f} MiB")
    assert growth_mib < 8
    assert_responsive(server)


def test_big_synchronizing_literal_before_login_gets_no_without_continuation(server):
    s, f, _ = connect(server)
    s.sendall(b"a3 LOGIN {10485760}\r\n")
    answer = f.readline()
    assert answer.startswith(b"a3 NO [LIMIT]"), answer
    # The connection goes on.
    s.sendall(b"a4 NOOP\r\n")
    assert f.readline().startswith(b"a4 OK")
    assert server.spool_files() == []
    # A small literal for LOGIN still works.
    s.sendall(b"a5 LOGIN {5}\r\n")
    assert f.readline().startswith(b"+")
    s.sendall(f"alice {{{len(PASSWORD)}+}}\r\n{PASSWORD}\r\n".encode())
    assert f.readline().startswith(b"a5 OK"), "LOGIN with literals"
    s.close()


def test_big_nonsynchronizing_literal_before_login_is_never_spooled(server):
    """Once a LOGIN literal of 50 MiB went to data_dir/spool: 1 GB written in 2.4 s by one
    unauthenticated connection. Now the server says BYE and closes without reading it."""
    s, f, _ = connect(server)
    spooled = []
    stop = threading.Event()

    def watch_spool():
        while not stop.is_set():
            spooled.extend(server.spool_files())
            time.sleep(0.01)

    watcher = threading.Thread(target=watch_spool)
    watcher.start()
    chunk = b"y" * MIB
    try:
        s.sendall(b"a6 LOGIN {41943040+}\r\n")
        for _ in range(20):  # 20 of the announced 40 MiB
            s.sendall(chunk)
    except OSError:
        pass  # the server closed the connection
    assert_responsive(server)
    lines = read_until_closed(s, f)
    stop.set()
    watcher.join()
    assert spooled == [], spooled
    assert any(l.startswith(b"* BYE [LIMIT]") for l in lines), lines
    assert_responsive(server)


def test_starttls_and_silence_is_closed_at_the_prelogin_deadline(make_server):
    """A socket that sent only STARTTLS once kept its slot (and a file descriptor) for as
    long as the client liked: the handshake had no timeout."""
    server = make_server(extra_config="[limits]\nunauthenticated_timeout_secs = 2\n")
    start = time.monotonic()
    socks = []
    for _ in range(20):
        s, f, _ = connect(server)
        s.sendall(b"s STARTTLS\r\n")
        assert f.readline().startswith(b"s OK")
        socks.append((s, f))
    assert_responsive(server)
    for s, f in socks:
        s.settimeout(max(0.1, start + 5 - time.monotonic()))
        try:
            assert s.recv(1) == b""
        except ConnectionResetError:
            pass
        except socket.timeout:
            raise AssertionError("STARTTLS socket still open 5 s after connect")
        s.close()
    took = time.monotonic() - start
    assert took < 5, took
    assert_responsive(server)


def test_implicit_tls_silence_is_closed_at_the_prelogin_deadline(make_server):
    server = make_server(extra_config="[limits]\nunauthenticated_timeout_secs = 2\n")
    start = time.monotonic()
    s = socket.create_connection(server.imaps, timeout=5)
    try:
        assert s.recv(1) == b""
    except ConnectionResetError:
        pass
    assert time.monotonic() - start < 4
    s.close()


def test_noop_does_not_extend_the_prelogin_deadline(make_server):
    server = make_server(extra_config="[limits]\nunauthenticated_timeout_secs = 2\n")
    start = time.monotonic()
    s, f, _ = connect(server)
    s.settimeout(1)
    closed_at = None
    n = 0
    while time.monotonic() - start < 6:
        n += 1
        try:
            s.sendall(f"n{n} NOOP\r\n".encode())
            line = f.readline()
            while line.startswith(b"* ") and not line.startswith(b"* BYE"):
                line = f.readline()
        except OSError:
            line = b""
        if not line or line.startswith(b"* BYE"):
            closed_at = time.monotonic() - start
            break
        assert line.startswith(f"n{n} OK".encode()), line
        time.sleep(0.3)
    assert closed_at is not None, "NOOPs kept an unauthenticated connection open for 6 s"
    assert closed_at < 3.5, closed_at
    s.close()
    assert_responsive(server)


def test_client_that_does_not_read_is_disconnected_after_the_write_timeout(make_server):
    """A client that never read kept its connection (and the answer buffered for it) forever:
    writes had no timeout."""
    server = make_server(extra_config="[limits]\nwrite_timeout_secs = 2\n")
    s, f, _ = connect(server, rcvbuf=4096)
    login(s, f)
    body = b"Subject: big\r\n\r\n" + (b"z" * 78 + b"\r\n") * (4 * MIB // 80)
    s.sendall(f"p APPEND INBOX {{{len(body)}}}\r\n".encode())
    assert f.readline().startswith(b"+")
    s.sendall(body + b"\r\n")
    line = f.readline()
    assert line.startswith(b"p OK"), line
    s.sendall(b"q SELECT INBOX\r\n")
    while not f.readline().startswith(b"q "):
        pass
    # 10 x 4 MiB of answers; read none of it.
    s.sendall(b"".join(f"r{i} FETCH 1 BODY[]\r\n".encode() for i in range(10)))
    start = time.monotonic()
    assert_responsive(server)
    log = server.dir / "server.log"
    while b"does not read" not in log.read_bytes():
        assert time.monotonic() - start < 15, "no write timeout within 15 s (2 s set)"
        time.sleep(0.1)
    print(f"closed {time.monotonic() - start:.1f} s after the FETCHes (write_timeout_secs = 2)")
    # Now read what the socket buffers held: the server must have closed the connection.
    s.settimeout(5)
    got = 0
    try:
        while True:
            data = s.recv(1 << 20)
            if not data:
                break
            got += len(data)
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError(f"still open {time.monotonic() - start:.1f} s later ({got} bytes read)")
    assert got < 10 * len(body), got
    s.close()
    assert_responsive(server)


def test_per_ip_limit_defaults_to_a_few_hundred(server):
    """By default one address could hold 20,000 connections: every slot and file descriptor."""
    socks = []
    try:
        for _ in range(256):
            s, f, greeting = connect(server)
            assert greeting.startswith(b"* OK"), greeting
            socks.append(s)
        s, f, greeting = connect(server)
        socks.append(s)
        assert greeting.startswith(b"* BYE"), greeting
        # Another address is still served.
        s, f, greeting = connect(server, source="127.0.0.2", timeout=1)
        socks.append(s)
        assert greeting.startswith(b"* OK"), greeting
        s.sendall(b"x NOOP\r\n")
        assert f.readline().startswith(b"x OK")
    finally:
        for s in socks:
            s.close()
    time.sleep(0.2)
    assert_responsive(server)
