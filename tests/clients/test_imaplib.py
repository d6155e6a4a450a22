"""Python imaplib against the real server: TLS, STARTTLS and plaintext on loopback."""

import imaplib
import socket
import ssl
import threading
import time

MSG = (b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\n"
       b"Subject: hello from imaplib\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n"
       b"Message-ID: <imaplib-1@example.org>\r\n\r\nHello Bob,\r\nthe word is marmalade.\r\n")


def login_plain(server, user="alice"):
    c = imaplib.IMAP4(*server.imap)
    c.login(user, "pass")
    return c


def test_implicit_tls_login_and_mail_cycle(server):
    c = imaplib.IMAP4_SSL(*server.imaps, ssl_context=server.tls_context())
    assert "IMAP4REV2" in c.capabilities or "IMAP4rev2" in c.capabilities
    typ, _ = c.login("alice", "pass")
    assert typ == "OK"
    typ, data = c.list()
    names = {line.decode().rsplit(" ", 1)[-1].strip('"') for line in data}
    assert {"INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"} <= names
    typ, data = c.append("INBOX", "(\\Flagged)", imaplib.Time2Internaldate(time.time()), MSG)
    assert typ == "OK" and b"APPENDUID" in data[0]
    typ, data = c.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    typ, data = c.fetch("1", "(RFC822)")
    assert data[0][1] == MSG
    typ, data = c.search(None, "BODY", "marmalade")
    assert data == [b"1"]
    typ, data = c.fetch("1", "(FLAGS)")
    assert b"\\Seen" in data[0] and b"\\Flagged" in data[0]
    typ, data = c.copy("1", "Archive")
    assert typ == "OK"
    typ, data = c.uid("MOVE", "1", "Trash")
    assert typ == "OK"
    typ, data = c.select("Trash")
    assert data == [b"1"]
    typ, data = c.status("Archive", "(MESSAGES UNSEEN)")
    assert b"MESSAGES 1" in data[0]
    c.logout()


def test_starttls_then_login(server):
    c = imaplib.IMAP4(*server.imap)
    assert "STARTTLS" in c.capabilities
    c.starttls(ssl_context=server.tls_context())
    assert "STARTTLS" not in c.capabilities
    typ, _ = c.login("bob", "pass")
    assert typ == "OK"
    c.logout()


def test_plaintext_login_refused_off_loopback(make_server):
    """With plaintext_on_loopback = false, LOGIN before TLS is refused and LOGINDISABLED shown."""
    s = make_server(extra_config="[auth]\nplaintext_on_loopback = false\n")
    c = imaplib.IMAP4(*s.imap)
    assert "LOGINDISABLED" in c.capabilities
    try:
        c.login("alice", "pass")
        raise AssertionError("login succeeded without TLS")
    except imaplib.IMAP4.error as e:
        assert "PRIVACYREQUIRED" in str(e) or "TLS" in str(e)
    c.starttls(ssl_context=s.tls_context())
    assert c.login("alice", "pass")[0] == "OK"
    c.logout()


def test_wrong_password_and_user_isolation(server):
    c = imaplib.IMAP4(*server.imap)
    try:
        c.login("alice", "nope")
        raise AssertionError("wrong password accepted")
    except imaplib.IMAP4.error as e:
        assert "AUTHENTICATIONFAILED" in str(e)
    a = login_plain(server, "alice")
    a.append("INBOX", None, None, MSG)
    a.create("Private")
    b = login_plain(server, "bob")
    typ, data = b.select("INBOX")
    assert data == [b"0"]
    typ, data = b.list('""', "Private")
    assert data == [None]
    typ, _ = b.select("Private")
    assert typ == "NO"


def test_login_with_domain(make_server):
    s = make_server(users=("carol@example.org",))
    c = imaplib.IMAP4(*s.imap)
    assert c.login("carol@example.org", "pass")[0] == "OK"


def test_idle_sees_append_from_other_session(server):
    a = login_plain(server)
    a.select("INBOX")
    tag = a._new_tag().decode()
    a.send(f"{tag} IDLE\r\n".encode())
    assert a.readline().startswith(b"+")
    got = {}

    def wait():
        got["line"] = a.readline()
        got["at"] = time.monotonic()

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.2)
    b = login_plain(server)
    sent = time.monotonic()
    b.append("INBOX", None, None, MSG)
    t.join(5)
    assert got["line"].strip() == b"* 1 EXISTS"
    assert got["at"] - sent < 1.0
    a.send(b"DONE\r\n")
    while True:
        line = a.readline()
        if line.startswith(tag.encode()):
            assert b"OK" in line
            break


def test_unicode_mailbox_names_rev1_utf7(server):
    c = login_plain(server)
    typ, _ = c.create("&ZeVnLIqe-")  # modified UTF-7 for 日本語
    assert typ == "OK"
    typ, data = c.list('""', "&ZeVnLIqe-")
    assert b"&ZeVnLIqe-" in data[0]
    typ, _ = c.create("bad&name")  # invalid modified UTF-7
    assert typ != "OK"


def test_bad_input_keeps_session(server):
    s = socket.create_connection(server.imap)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a1 LOGIN alice pass\r\n")
    assert f.readline().startswith(b"a1 OK")
    s.sendall(b"a2 " + b"X" * 100_000 + b"\r\n")
    assert f.readline().startswith(b"a2 BAD")
    s.sendall(b"a3 SELECT \x00\xff\r\n")
    assert f.readline().startswith(b"a3 BAD")
    s.sendall(b"a4 APPEND INBOX {99999999999}\r\n")
    assert f.readline().startswith(b"a4 NO [TOOBIG]")
    s.sendall(b"a5 NOOP\r\n")
    line = f.readline()
    while not line.startswith(b"a5"):
        line = f.readline()
    assert line.startswith(b"a5 OK")
    s.close()


def test_unauthenticated_timeout(make_server):
    s = make_server(extra_config="[limits]\nunauthenticated_timeout_secs = 1\n")
    sock = socket.create_connection(s.imap)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    sock.settimeout(10)
    assert f.readline().startswith(b"* BYE")
    assert f.readline() == b""


def test_connection_limits(make_server):
    s = make_server(extra_config="[limits]\nmax_connections_per_ip = 2\n")
    first = [socket.create_connection(s.imap) for _ in range(2)]
    for sock in first:
        assert sock.makefile("rb").readline().startswith(b"* OK")
    third = socket.create_connection(s.imap)
    third.settimeout(10)
    f = third.makefile("rb")
    assert f.readline().startswith(b"* BYE")
    assert f.readline() == b""
    first[0].close()
    time.sleep(0.3)
    again = socket.create_connection(s.imap)
    again.settimeout(10)
    assert again.makefile("rb").readline().startswith(b"* OK")


def test_failed_logins_disconnect(server):
    sock = socket.create_connection(server.imap)
    sock.settimeout(30)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"* OK")
    lines = []
    for i in range(3):
        sock.sendall(f"l{i} LOGIN alice wrong{i}\r\n".encode())
    while True:
        line = f.readline()
        if not line:
            break
        lines.append(line)
    assert lines[-1].startswith(b"l2 NO"), lines
    assert any(l.startswith(b"* BYE") for l in lines), lines
