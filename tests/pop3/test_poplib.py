"""POP3 with Python's poplib and raw sockets: a transcript of each command, byte-stuffing,
TOP 0 and past the end, UIDL across a restart, DELE at QUIT seen by IMAP, a dropped
connection, the maildrop lock, STLS/POP3S, and bad input."""

import imaplib
import poplib
import socket
import ssl
import time

from conftest import PASSWORD, assert_responsive

DOTTED = b"Subject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast\r\n"


def imap_login(server):
    imap = imaplib.IMAP4(*server.imap)
    imap.login("alice", PASSWORD)
    return imap


def deliver(server, *messages):
    imap = imap_login(server)
    for m in messages:
        typ, _ = imap.append("INBOX", None, None, m)
        assert typ == "OK"
    imap.logout()


def pop(server):
    p = poplib.POP3(*server.pop3, timeout=10)
    p.user("alice")
    assert p.pass_(PASSWORD).startswith(b"+OK Logged in")
    return p


class Raw:
    """A line-level POP3 client for what poplib will not send."""

    def __init__(self, addr):
        self.sock = socket.create_connection(addr, timeout=10)
        self.f = self.sock.makefile("rb")
        assert self.line().startswith(b"+OK")

    def line(self):
        return self.f.readline()

    def cmd(self, text):
        self.sock.sendall(text if isinstance(text, bytes) else text.encode() + b"\r\n")
        return self.line()

    def multi(self):
        lines = []
        while (l := self.line()) != b".\r\n":
            assert l, "connection closed"
            lines.append(l)
        return lines

    def close(self):
        self.sock.close()


def test_capa_and_auth_listing(server):
    p = poplib.POP3(*server.pop3)
    assert p.getwelcome() == b"+OK Mailkeep POP3 ready."
    caps = p.capa()
    for c in ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER", "STLS"]:
        assert c in caps, caps
    assert caps["SASL"] == ["SCRAM-SHA-256", "PLAIN", "LOGIN"]
    assert caps["IMPLEMENTATION"] == ["Mailkeep"]
    p.quit()


def test_each_command(server):
    deliver(server, b"Subject: one\r\n\r\nhello\r\n", DOTTED, b"Subject: three\r\n\r\nbye\r\n")
    p = pop(server)
    count, size = p.stat()
    assert count == 3
    resp, listing, _ = p.list()
    sizes = [int(l.split()[1]) for l in listing]
    assert resp == f"+OK 3 messages ({size} octets)".encode() and sum(sizes) == size
    assert p.list(2) == f"+OK 2 {sizes[1]}".encode()
    resp, uidls, _ = p.uidl()
    assert len(uidls) == 3 and len({u.split()[1] for u in uidls}) == 3
    assert p.uidl(3) == b"+OK " + uidls[2]
    # RETR: the reply line gives the exact size; poplib undoes the byte-stuffing.
    resp, lines, octets = p.retr(2)
    assert resp == f"+OK {sizes[1]} octets".encode()
    assert b"\r\n".join(lines) + b"\r\n" == DOTTED
    # TOP 0: the header and the empty line; TOP past the end: the whole message.
    assert p.top(2, 0)[1] == [b"Subject: dots", b""]
    assert p.top(2, 1)[1] == [b"Subject: dots", b"", b".starts with a dot"]
    assert p.top(2, 1000)[1] == lines
    assert p.dele(1) == b"+OK Message 1 deleted."
    for call in (lambda: p.dele(1), lambda: p.retr(1), lambda: p.list(1), lambda: p.retr(4)):
        try:
            call()
            raise AssertionError("expected -ERR")
        except poplib.error_proto as e:
            assert e.args[0].startswith(b"-ERR")
    assert p.stat() == (2, size - sizes[0])
    assert p.noop() == b"+OK Nothing done."
    assert p.rset().startswith(b"+OK Maildrop has 3 messages")
    p.dele(3)
    assert p.quit() == b"+OK Mailkeep POP3 signing off (2 messages left)."
    assert pop(server).stat()[0] == 2


def test_byte_stuffing_on_the_wire(server):
    deliver(server, DOTTED)
    r = Raw(server.pop3)
    assert r.cmd("USER alice").startswith(b"+OK")
    assert r.cmd(f"PASS {PASSWORD}").startswith(b"+OK")
    assert r.cmd("RETR 1") == f"+OK {len(DOTTED)} octets\r\n".encode()
    assert r.multi() == [b"Subject: dots\r\n", b"\r\n", b"..starts with a dot\r\n",
                         b"...two dots\r\n", b"..\r\n", b"last\r\n"]
    assert r.cmd("TOP 1 0") == b"+OK Top of message follows\r\n"
    assert r.multi() == [b"Subject: dots\r\n", b"\r\n"]
    # PIPELINING: several commands in one write, answered in order.
    r.sock.sendall(b"NOOP\r\nSTAT\r\nLIST 1\r\n")
    assert r.line() == b"+OK Nothing done.\r\n"
    assert r.line() == f"+OK 1 {len(DOTTED)}\r\n".encode()
    assert r.line() == f"+OK 1 {len(DOTTED)}\r\n".encode()
    r.cmd("QUIT")
    r.close()


def test_uidl_stable_across_restart(server):
    deliver(server, b"Subject: a\r\n\r\na\r\n", b"Subject: b\r\n\r\nb\r\n")
    p = pop(server)
    before = p.uidl()[1]
    p.dele(1)
    p.quit()
    server.stop()
    server.start()
    deliver(server, b"Subject: c\r\n\r\nc\r\n")
    p = pop(server)
    after = p.uidl()[1]
    p.quit()
    # Message b keeps its UIDL (now number 1); the new one gets a UIDL never used before.
    assert after[0].split()[1] == before[1].split()[1]
    assert after[1].split()[1] not in {u.split()[1] for u in before}


def test_dele_at_quit_seen_by_imap(server):
    deliver(server, b"Subject: a\r\n\r\na\r\n", b"Subject: b\r\n\r\nb\r\n")
    imap = imap_login(server)
    imap.select("INBOX")
    p = pop(server)
    p.dele(1)
    # Before QUIT nothing happened.
    imap.noop()
    assert imap.search(None, "ALL")[1] == [b"1 2"]
    p.quit()
    typ, data = imap.noop()
    assert imap.untagged_responses.get("EXPUNGE") == [b"1"] or imap.search(None, "ALL")[1] == [b"1"]
    assert imap.search(None, "ALL")[1] == [b"1"]
    # RETR'd messages are \Seen.
    p = pop(server)
    p.retr(1)
    p.quit()
    imap.logout()
    imap = imap_login(server)
    imap.select("INBOX")
    assert b"\\Seen" in imap.fetch("1", "FLAGS")[1][0]
    imap.logout()


def test_dropped_connection_deletes_nothing(server):
    deliver(server, b"Subject: a\r\n\r\na\r\n", b"Subject: b\r\n\r\nb\r\n")
    r = Raw(server.pop3)
    r.cmd("USER alice")
    assert r.cmd(f"PASS {PASSWORD}").startswith(b"+OK")
    assert r.cmd("DELE 1").startswith(b"+OK")
    assert r.cmd("DELE 2").startswith(b"+OK")
    # The maildrop is locked meanwhile; the second session is told so and may try again.
    other = Raw(server.pop3)
    other.cmd("USER alice")
    assert other.cmd(f"PASS {PASSWORD}") == \
        b"-ERR [IN-USE] Another POP3 session of this account is active.\r\n"
    r.sock.shutdown(socket.SHUT_RDWR)
    r.close()
    deadline = time.time() + 5
    while True:
        other.cmd("USER alice")
        got = other.cmd(f"PASS {PASSWORD}")
        if got.startswith(b"+OK") or time.time() > deadline:
            break
        time.sleep(0.05)
    assert got.startswith(b"+OK Logged in, 2 messages"), got
    other.close()
    imap = imap_login(server)
    imap.select("INBOX")
    assert imap.search(None, "ALL")[1] == [b"1 2"]
    imap.logout()


def test_keep_on_server_marks_seen(make_server):
    server = make_server(pop3_extra="delete = false\n")
    deliver(server, b"Subject: a\r\n\r\na\r\n")
    p = pop(server)
    p.dele(1)
    p.quit()
    imap = imap_login(server)
    imap.select("INBOX")
    assert imap.search(None, "ALL")[1] == [b"1"]
    assert b"\\Seen" in imap.fetch("1", "FLAGS")[1][0]
    imap.logout()


def test_tls_rules(make_server):
    server = make_server(extra_config="[auth]\nplaintext_on_loopback = false\n")
    deliver_ctx = ssl.create_default_context(cafile=server.cert)
    p = poplib.POP3(*server.pop3)
    caps = p.capa()
    # No plaintext mechanism; SCRAM sends no password and stays.
    assert "USER" not in caps and caps["SASL"] == ["SCRAM-SHA-256"] and "STLS" in caps
    try:
        p.user("alice")
        raise AssertionError("USER accepted without TLS")
    except poplib.error_proto as e:
        assert b"use STLS" in e.args[0]
    assert p.stls(deliver_ctx).startswith(b"+OK")
    assert "USER" in p.capa() and "STLS" not in p.capa()
    p.user("alice")
    assert p.pass_(PASSWORD).startswith(b"+OK Logged in")
    p.quit()
    p = poplib.POP3_SSL(*server.pop3s, context=deliver_ctx)
    assert "STLS" not in p.capa()
    p.user("alice")
    assert p.pass_(PASSWORD).startswith(b"+OK Logged in")
    p.quit()


def test_sasl(server):
    r = Raw(server.pop3)
    assert r.cmd("AUTH") == b"+OK Mechanisms follow\r\n"
    assert r.multi() == [b"SCRAM-SHA-256\r\n", b"PLAIN\r\n", b"LOGIN\r\n"]
    assert r.cmd("AUTH PLAIN") == b"+ \r\n"
    assert r.cmd("*") == b"-ERR Authentication cancelled.\r\n"
    assert r.cmd("AUTH PLAIN") == b"+ \r\n"
    assert r.cmd("%%% garbage %%%") == b"-ERR Invalid base64 data.\r\n"
    assert r.cmd("AUTH X-NOPE") == b"-ERR Unsupported authentication mechanism.\r\n"
    assert r.cmd("AUTH LOGIN") == b"+ VXNlcm5hbWU6\r\n"
    assert r.cmd("YWxpY2U=") == b"+ UGFzc3dvcmQ6\r\n"
    assert r.cmd("cGFzcw==").startswith(b"+OK Logged in")
    r.close()
    r = Raw(server.pop3)
    assert r.cmd("AUTH PLAIN AGFsaWNlAHdyb25n") == b"-ERR [AUTH] Authentication failed.\r\n"
    assert r.cmd("AUTH PLAIN AGFsaWNlAHBhc3M=").startswith(b"+OK Logged in")
    r.close()


def test_bad_input_gets_errors_and_the_session_goes_on(server):
    deliver(server, b"Subject: a\r\n\r\na\r\n")
    r = Raw(server.pop3)
    assert r.cmd("STAT") == b"-ERR Not logged in yet.\r\n"
    assert r.cmd("RETR 1") == b"-ERR Not logged in yet.\r\n"
    assert r.cmd("XYZZY") == b"-ERR Unknown command.\r\n"
    assert r.cmd("APOP alice 0123456789abcdef") == b"-ERR APOP is not supported.\r\n"
    assert r.cmd("PASS x") == b"-ERR USER first.\r\n"
    assert r.cmd(b"\xff\xfe\x00\r\n") == b"-ERR Unknown command.\r\n"
    # Over-long lines (1 MiB) are skipped with an error, before and after login.
    assert r.cmd(b"USER " + b"a" * (1 << 20) + b"\r\n") == b"-ERR Line too long.\r\n"
    assert_responsive(server)
    assert r.cmd("USER alice").startswith(b"+OK")
    assert r.cmd(f"PASS {PASSWORD}").startswith(b"+OK")
    assert r.cmd(b"NOOP " + b"x" * 100_000 + b"\r\n") == b"-ERR Line too long.\r\n"
    assert r.cmd("USER bob") == b"-ERR Already logged in.\r\n"
    assert r.cmd("STLS") == b"-ERR STLS is only allowed before login.\r\n"
    assert r.cmd("RETR -1") == b"-ERR Invalid message number.\r\n"
    assert r.cmd("RETR 0") == b"-ERR No such message.\r\n"
    assert r.cmd("TOP 1") == b"-ERR TOP takes a message number and a line count.\r\n"
    assert r.cmd("LIST 99999999999999") == b"-ERR Invalid message number.\r\n"
    assert r.cmd("STAT").startswith(b"+OK 1 ")
    assert r.cmd("QUIT").startswith(b"+OK")
    r.close()
    assert_responsive(server)


def test_large_message_is_streamed(server):
    """A 16 MiB message: RETR reads it from the store a piece at a time (neither the message
    nor a stuffed copy of it is held whole), and a fresh client is answered meanwhile."""
    line = b".a line of a large message that starts with a dot\r\n"
    body = line * (16 * 1024 * 1024 // len(line))
    deliver(server, b"Subject: big\r\n\r\n" + body)
    # A fresh process: memory the APPEND freed would otherwise hide a whole copy.
    server.stop()
    server.start()
    r = Raw(server.pop3)
    r.cmd("USER alice")
    r.cmd(f"PASS {PASSWORD}")
    # After login: the password hash's working memory (~19 MiB) is not the RETR's.
    rss0 = server.rss_kib()
    r.sock.sendall(b"RETR 1\r\n")
    assert r.line().startswith(b"+OK")
    got = 0
    dots = 0
    peak = rss0
    while True:
        l = r.line()
        if l == b".\r\n":
            break
        got += len(l)
        dots += l.startswith(b"..")
        if got % (1 << 20) < len(l):
            peak = max(peak, server.rss_kib())
            assert_responsive(server)
    assert dots == len(body) // len(line)
    r.cmd("QUIT")
    growth = peak - rss0
    print(f"RSS before {rss0} KiB, peak during RETR {peak} KiB, growth {growth} KiB")
    # Pieces and the unpacking window; the message whole would be 16 MiB.
    assert growth < 8 * 1024, f"RSS grew {growth} KiB"


def test_timeouts(make_server):
    server = make_server(extra_config="[limits]\nunauthenticated_timeout_secs = 1\n"
                                      "idle_timeout_secs = 2\n")
    deliver(server, b"Subject: a\r\n\r\na\r\n")
    r = Raw(server.pop3)
    start = time.monotonic()
    assert r.line() == b"-ERR Disconnected for inactivity.\r\n"
    assert r.line() == b""
    assert 0.9 < time.monotonic() - start < 3
    # Logged in: the longer idle timeout; DELE without QUIT is not applied.
    r = Raw(server.pop3)
    r.cmd("USER alice")
    assert r.cmd(f"PASS {PASSWORD}").startswith(b"+OK")
    assert r.cmd("DELE 1").startswith(b"+OK")
    start = time.monotonic()
    assert r.line() == b"-ERR Disconnected for inactivity.\r\n"
    assert 1.5 < time.monotonic() - start < 4
    p = pop(server)
    assert p.stat()[0] == 1
    p.quit()


def test_prelogin_deadline_is_not_extended_by_commands(make_server):
    """Before login the limit is a deadline from connect: CAPA every 0.3 s does not keep a slot."""
    server = make_server(extra_config="[limits]\nunauthenticated_timeout_secs = 2\n")
    r = Raw(server.pop3)
    start = time.monotonic()
    closed = False
    while time.monotonic() - start < 6:
        try:
            r.sock.sendall(b"CAPA\r\n")
            while (line := r.line()) not in (b".\r\n", b""):
                if line.startswith(b"-ERR"):
                    break
            if line in (b"", b"-ERR Disconnected for inactivity.\r\n"):
                closed = True
                break
        except (BrokenPipeError, ConnectionResetError, OSError):
            closed = True
            break
        time.sleep(0.3)
    assert closed, "the pre-login deadline was extended by CAPA"
    assert time.monotonic() - start < 4
