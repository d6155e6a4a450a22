"""Hostile CATENATE (RFC 4469): URLs naming another account's mail never read it; URLs that
multiply a big stored message meet APPENDLIMIT ([TOOBIG]) and, across a MULTIAPPEND, [LIMIT],
with bounded memory and the server answering others meanwhile."""

import socket
import threading

from conftest import PASSWORD, assert_responsive

SECRET = b"Subject: secret\r\n\r\nbob's secret words\r\n"


def session(server, user):
    s = socket.create_connection(server.imap, timeout=30)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b"L LOGIN %s %s\r\n" % (user.encode(), PASSWORD.encode()))
    while not (line := f.readline()).startswith(b"L "):
        pass
    assert line.startswith(b"L OK"), line
    return s, f


def command(s, f, tag, text):
    s.sendall(text)
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed"
        lines.append(line)
        if line.startswith(tag + b" "):
            return lines


def test_urls_of_another_account_never_read(server):
    s, f = session(server, "bob")
    assert command(s, f, b"a", b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(SECRET), SECRET))[-1] \
        .startswith(b"a OK")
    s.close()
    s, f = session(server, "alice")
    # alice has no message 1 of her own: every spelling of bob's message is BADURL.
    for url in (b"/INBOX/;UID=1", b"imap://bob@localhost/INBOX/;UID=1",
                b"imap://bob;AUTH=*@localhost/INBOX/;UID=1", b"/../bob/INBOX/;UID=1",
                b"/INBOX/;UID=1/;URLAUTH=anonymous:internal:00"):
        last = command(s, f, b"b", b'b APPEND Drafts CATENATE (URL "%s")\r\n' % url)[-1]
        assert last.startswith(b"b NO [BADURL"), (url, last)
    out = command(s, f, b"c", b"c SELECT Drafts\r\n")
    assert b"* 0 EXISTS\r\n" in out, out
    last = command(s, f, b"e", b"e SEARCH TEXT secret\r\n")
    assert last[0] == b"* SEARCH\r\n", last
    s.close()
    assert_responsive(server)


def test_url_multiplication_is_bounded(make_server):
    server = make_server(extra_config="[limits]\nmax_message_size = 4000000\n")
    s, f = session(server, "alice")
    big = b"Subject: big\r\n\r\n" + (b"x" * 76 + b"\r\n") * 40000  # 3.1 MB
    s.sendall(b"a APPEND INBOX {%d}\r\n" % len(big))
    assert f.readline().startswith(b"+")
    s.sendall(big + b"\r\n")
    while not (line := f.readline()).startswith(b"a "):
        pass
    assert line.startswith(b"a OK"), line
    rss0 = server.rss_kib()
    # One message of two copies: over APPENDLIMIT.
    last = command(s, f, b"b", b'b APPEND Drafts CATENATE (URL "/INBOX/;UID=1" URL "/INBOX/;UID=1")\r\n')[-1]
    assert last.startswith(b"b NO [TOOBIG]"), last
    # 200 URLs in one message, 100 messages in one MULTIAPPEND: each is refused as soon as
    # its bytes pass the limit, and the MULTIAPPEND once all joined pass it ([LIMIT]).
    many = b" ".join([b'URL "/INBOX/;UID=1"'] * 200)
    last = command(s, f, b"c", b"c APPEND Drafts CATENATE (" + many + b")\r\n")[-1]
    assert last.startswith(b"c NO [TOOBIG]"), last
    one = b' CATENATE (URL "/INBOX/;UID=1")'
    stop = threading.Event()
    def probe():
        while not stop.is_set():
            assert_responsive(server)
    t = threading.Thread(target=probe)
    t.start()
    try:
        last = command(s, f, b"d", b"d APPEND Drafts" + one * 100 + b"\r\n")[-1]
    finally:
        stop.set()
        t.join()
    assert last.startswith(b"d NO [LIMIT]"), last
    grown = server.rss_kib() - rss0
    print(f"RSS growth during the CATENATE attack: {grown} KiB")
    assert grown < 48 * 1024, f"RSS grew {grown} KiB"
    assert command(s, f, b"e", b"e STATUS Drafts (MESSAGES)\r\n")[0] == b"* STATUS Drafts (MESSAGES 0)\r\n"
    s.close()
    assert_responsive(server)


def test_big_text_part_is_spooled_and_joined(server):
    """A TEXT literal past the spool threshold goes to a file like an APPEND's message, and is
    joined from there (nothing left behind in the spool)."""
    s, f = session(server, "alice")
    head = b"Subject: big text\r\n\r\n"
    body = (b"y" * 98 + b"\r\n") * 3000  # 300 KB
    s.sendall(b'a APPEND Drafts CATENATE (TEXT {%d}\r\n' % len(head))
    assert f.readline().startswith(b"+")
    s.sendall(head + b" TEXT {%d}\r\n" % len(body))
    assert f.readline().startswith(b"+")
    s.sendall(body + b")\r\n")
    while not (line := f.readline()).startswith(b"a "):
        pass
    assert line.startswith(b"a OK [APPENDUID"), line
    command(s, f, b"b", b"b SELECT Drafts\r\n")
    out = command(s, f, b"c", b"c FETCH 1 (RFC822.SIZE)\r\n")
    assert out[0] == b"* 1 FETCH (RFC822.SIZE %d)\r\n" % (len(head) + len(body)), out
    s.close()
    assert server.spool_files() == []
    assert_responsive(server)
