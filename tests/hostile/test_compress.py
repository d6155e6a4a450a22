"""COMPRESS=DEFLATE (RFC 4978, issue 10): a working compressed session over plaintext
loopback, implicit TLS and STARTTLS, and the limits applied to the inflated stream (a
decompression bomb gets the [LIMIT] answer a plain oversized command gets, with bounded
memory).

imaplib has no COMPRESS, so `Client` below wraps the socket in raw deflate itself
(zlib.compressobj(wbits=-15): no zlib header, the full 32 KiB window a client may use).
"""

import imaplib
import socket
import threading
import time
import zlib

from conftest import PASSWORD, assert_responsive

MiB = 1024 * 1024


class Client:
    """A small IMAP client whose socket can switch to raw deflate after COMPRESS."""

    def __init__(self, server, tls=False, starttls=False):
        addr = server.imaps if tls else server.imap
        self.sock = socket.create_connection(addr, timeout=30)
        if tls:
            self.sock = server.tls_context().wrap_socket(self.sock, server_hostname="localhost")
        self.comp = self.decomp = None
        self.buf = b""
        self.wire_in = 0
        self.n = 0
        assert self.readline().startswith(b"* OK")
        if starttls:
            assert self.command("STARTTLS")[0].startswith(b"t1 OK")
            self.sock = server.tls_context().wrap_socket(self.sock, server_hostname="localhost")

    def start_compress(self):
        self.comp = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.decomp = zlib.decompressobj(-15)
        assert self.buf == b"", "nothing may follow the OK of COMPRESS uncompressed"

    def send(self, data):
        if self.comp:
            data = self.comp.compress(data) + self.comp.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def _more(self):
        chunk = self.sock.recv(256 * 1024)
        if not chunk:
            raise EOFError("connection closed")
        self.wire_in += len(chunk)
        self.buf += self.decomp.decompress(chunk) if self.decomp else chunk

    def readline(self):
        while b"\n" not in self.buf:
            self._more()
        i = self.buf.index(b"\n") + 1
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def read(self, n):
        while len(self.buf) < n:
            self._more()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def command(self, text, literal=None):
        """Send a command (optionally with one synchronizing literal); return the tagged line
        and the untagged lines, with literal contents inline."""
        self.n += 1
        tag = f"t{self.n}".encode()
        if literal is None:
            self.send(tag + b" " + text.encode() + b"\r\n")
        else:
            self.send(tag + b" " + text.encode() + f" {{{len(literal)}}}\r\n".encode())
            line = self.readline()
            if not line.startswith(b"+"):
                return line, []
            self.send(literal + b"\r\n")
        lines = []
        while True:
            line = self.readline()
            if line.startswith(tag + b" "):
                return line, lines
            while line.endswith(b"}\r\n") and b"{" in line:
                n = int(line[line.rindex(b"{") + 1:-3])
                line += self.read(n)
                rest = self.readline()
                line += rest
                if not rest.endswith(b"}\r\n"):
                    break
            lines.append(line)

    def login_and_compress(self):
        ok, lines = self.command(f"LOGIN alice {PASSWORD}")
        assert b" OK " in ok and b"COMPRESS=DEFLATE" in ok, ok
        ok, _ = self.command("COMPRESS DEFLATE")
        assert ok.startswith(b"t2 OK"), ok
        self.start_compress()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def message(size):
    body = b"".join(b"line %d of a large message, fairly repetitive text\r\n" % i
                    for i in range(size // 50))
    return (b"From: a@example.org\r\nTo: alice@example.org\r\nSubject: big\r\n\r\n" + body)


def deliver(server, text):
    m = imaplib.IMAP4("127.0.0.1", server.imap[1])
    m.login("alice", PASSWORD)
    m.append("INBOX", None, None, text)
    m.logout()


def session(c, server):
    """LOGIN, COMPRESS, APPEND of a literal, SELECT, FETCH of a large message, IDLE with new
    mail arriving."""
    ok, lines = c.command("CAPABILITY")
    assert b"COMPRESS=DEFLATE" not in b"".join(lines), "offered only after login"
    ok, _ = c.command("COMPRESS DEFLATE")
    assert b" BAD " in ok, ok
    c.n = 0
    c.login_and_compress()
    ok, _ = c.command("COMPRESS DEFLATE")
    assert b" NO [COMPRESSIONACTIVE]" in ok, ok
    ok, lines = c.command("CAPABILITY")
    assert ok.startswith(b"t4 OK") and b"COMPRESS=DEFLATE" not in lines[0], lines
    big = message(3 * MiB)
    ok, _ = c.command("APPEND INBOX", literal=big)
    assert b" OK " in ok, ok
    ok, lines = c.command("SELECT INBOX")
    assert ok.startswith(b"t6 OK"), ok
    wire_before = c.wire_in
    ok, lines = c.command("FETCH 1 BODY.PEEK[]")
    assert ok.startswith(b"t7 OK"), ok
    assert lines[0].endswith(big + b")\r\n"), lines[0][:100]
    wire = c.wire_in - wire_before
    assert wire < len(big) / 3, f"FETCH of {len(big)} bytes took {wire} on the wire"
    c.send(b"t8 IDLE\r\n")
    c.n = 8
    assert c.readline().startswith(b"+ ")
    threading.Thread(target=deliver, args=(server, message(1000)), daemon=True).start()
    # The new message's EXISTS comes while idling (maybe with other untagged lines).
    while (line := c.readline()) != b"* 2 EXISTS\r\n":
        assert line.startswith(b"* "), line
    c.send(b"DONE\r\n")
    while True:
        line = c.readline()
        if line.startswith(b"t8 "):
            assert line.startswith(b"t8 OK"), line
            break
    ok, _ = c.command("LOGOUT")
    assert ok.startswith(b"t9 OK"), ok
    return len(big), wire


def test_compressed_session_on_plaintext_loopback(server):
    c = Client(server)
    try:
        size, wire = session(c, server)
        print(f"plaintext: FETCH of {size} bytes in {wire} compressed bytes")
    finally:
        c.close()


def test_compressed_session_on_implicit_tls(server):
    c = Client(server, tls=True)
    try:
        session(c, server)
    finally:
        c.close()


def test_compressed_session_after_starttls(server):
    c = Client(server, starttls=True)
    try:
        c.n = 0
        session(c, server)
    finally:
        c.close()


def test_unknown_mechanism_is_bad_and_leaves_the_stream_alone(server):
    c = Client(server)
    try:
        c.command(f"LOGIN alice {PASSWORD}")
        ok, _ = c.command("COMPRESS LZW")
        assert ok.startswith(b"t2 BAD"), ok
        ok, _ = c.command("NOOP")
        assert ok.startswith(b"t3 OK"), ok
    finally:
        c.close()


def test_compress_can_be_turned_off(make_server):
    s = make_server(extra_config="[limits]\ncompress_deflate = false\n")
    c = Client(s)
    try:
        ok, _ = c.command(f"LOGIN alice {PASSWORD}")
        assert b"COMPRESS=DEFLATE" not in ok
        ok, _ = c.command("COMPRESS DEFLATE")
        assert ok.startswith(b"t2 BAD"), ok
    finally:
        c.close()


def test_too_long_line_after_inflating_gets_limit_and_the_session_goes_on(server):
    c = Client(server)
    try:
        c.login_and_compress()
        # 200 KiB on the line (over the 64 KiB limit) in about 1 KiB of deflate.
        c.send(b"t3 NOOP " + b"x" * (200 * 1024) + b"\r\n")
        c.n = 3
        line = c.readline()
        assert line.startswith(b"t3 BAD [LIMIT]"), line
        ok, _ = c.command("NOOP")
        assert ok.startswith(b"t4 OK"), ok
    finally:
        c.close()


def test_literals_are_limited_after_inflating(server):
    c = Client(server)
    try:
        c.login_and_compress()
        c.n = 2
        ok, _ = c.command("SEARCH TEXT", literal=b"x" * (2 * MiB))
        assert ok.startswith(b"t3 NO [LIMIT]"), ok
        ok, _ = c.command("APPEND INBOX", literal=b"x" * (51 * MiB))
        assert ok.startswith(b"t4 NO [TOOBIG]"), ok
        ok, _ = c.command("NOOP")
        assert ok.startswith(b"t5 OK"), ok
    finally:
        c.close()


def test_decompression_bomb_gets_limit_and_bye_with_bounded_memory(server):
    """256 MiB of zeros, one endless line, deflated to about 256 KiB."""
    c = Client(server)
    bomb_size = 256 * MiB
    try:
        c.login_and_compress()
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = z.compress(b"t3 NOOP ")
        chunk = b"\0" * MiB
        for _ in range(bomb_size // MiB):
            bomb += z.compress(chunk)
        bomb += z.flush(zlib.Z_SYNC_FLUSH)
        assert len(bomb) < bomb_size // 500
        rss0 = server.rss_kib()

        def send():
            try:
                c.sock.sendall(bomb)
            except OSError:
                pass  # the server hung up before taking it all

        sender = threading.Thread(target=send, daemon=True)
        start = time.monotonic()
        sender.start()
        assert_responsive(server)
        lines = []
        try:
            while True:
                lines.append(c.readline())
        except (EOFError, OSError):
            pass
        took = time.monotonic() - start
        assert lines[:2] == [b"t3 BAD [LIMIT] Command line too long.\r\n",
                             b"* BYE [LIMIT] Command line too long.\r\n"], lines
        growth = server.rss_kib() - rss0
        print(f"bomb of {len(bomb)} bytes ({bomb_size} inflated): answered in {took:.2f} s, "
              f"RSS growth {growth} KiB")
        assert growth < 8 * 1024, f"RSS grew {growth} KiB"
        assert took < 10
        assert_responsive(server)
    finally:
        c.close()


def test_bomb_inside_idle_ends_the_connection(server):
    c = Client(server)
    try:
        c.login_and_compress()
        ok, _ = c.command("SELECT INBOX")
        c.send(b"t4 IDLE\r\n")
        assert c.readline().startswith(b"+ ")
        c.send(b"x" * (8 * MiB))
        lines = []
        try:
            while True:
                lines.append(c.readline())
        except (EOFError, OSError):
            pass
        assert lines and lines[-1].startswith(b"* BYE [LIMIT]"), lines
        assert_responsive(server)
    finally:
        c.close()


def test_garbage_instead_of_deflate_closes_quietly(server):
    c = Client(server)
    try:
        c.login_and_compress()
        c.sock.sendall(b"\xff" * 100)
        c.sock.settimeout(5)
        try:
            while c.readline():
                pass
        except (EOFError, OSError, zlib.error):
            pass
        assert_responsive(server)
    finally:
        c.close()



def test_idle_compressed_tls_connections_stay_under_64_kib_each(make_server):
    """Issue 10: an idle TLS + COMPRESS=DEFLATE connection costs at most 64 KiB (the 32 KiB
    inflate window the client may use is the floor; no deflate state is kept per connection).
    1,000 connections: LOGIN, SELECT, COMPRESS, 34 KiB of commands (so the window is in use,
    as after a while of real use), IDLE."""
    s = make_server(extra_config="[limits]\nmax_connections_per_ip = 2000\n"
                    "max_connections_per_user = 0\nmax_connections_per_user_ip = 0\n")
    # 1,000: the allocator's own ups and downs (a few MiB whatever the count) stay a few KiB
    # per connection at most; at 200 they moved the figure by up to 9 KiB between runs, at
    # 500 by 60-64.6 KiB (a CI run failed at 64.6 while typical runs gave 60-62).
    n = 1000
    warm = Client(s, tls=True)
    warm.login_and_compress()
    warm.close()
    time.sleep(0.5)
    rss0 = s.rss_kib()
    clients = []
    try:
        for _ in range(n):
            c = Client(s, tls=True)
            c.login_and_compress()
            ok, _ = c.command("SELECT INBOX")
            assert b" OK " in ok, ok
            c.send(b"".join(b"w%d SEARCH TEXT %s\r\n" % (i, b"x" * 3400) for i in range(10)))
            for i in range(10):
                while not (line := c.readline()).startswith(b"w%d " % i):
                    pass
                assert line.startswith(b"w%d OK" % i), line
            c.send(b"t99 IDLE\r\n")
            assert c.readline().startswith(b"+ ")
            clients.append(c)
        time.sleep(0.5)
        per = (s.rss_kib() - rss0) / n
        print(f"{n} idle TLS+COMPRESS connections: {per:.1f} KiB each (RSS delta / n)")
        assert per < 64, f"{per:.1f} KiB per idle compressed connection"
        assert_responsive(s)
    finally:
        for c in clients:
            c.close()
