"""OBJECTID (RFC 8474) with Python's imaplib against the real binary: MAILBOXID from CREATE,
SELECT and STATUS (kept through RENAME), EMAILID kept by COPY and MOVE, THREADID from the
Message-ID / In-Reply-To links, SEARCH EMAILID / THREADID."""

import imaplib
import re

from conftest import PASSWORD

ROOT = (b"Message-ID: <root@example.org>\r\nSubject: plan\r\n\r\nLet us meet.\r\n")
REPLY = (b"Message-ID: <reply@example.org>\r\nIn-Reply-To: <root@example.org>\r\n"
         b"Subject: Re: plan\r\n\r\nYes.\r\n")
OTHER = b"Message-ID: <other@example.org>\r\nSubject: other\r\n\r\nUnrelated.\r\n"


def login(server, user="alice"):
    c = imaplib.IMAP4(*server.imap)
    assert c.login(user, PASSWORD)[0] == "OK"
    return c


def mailbox_id(data):
    m = re.search(rb"MAILBOXID \(([A-Za-z0-9_-]+)\)", b" ".join(
        d if isinstance(d, bytes) else d[0] for d in data))
    assert m, data
    return m.group(1).decode()


def fetch_ids(c, seq):
    typ, data = c.fetch(seq, "(EMAILID THREADID)")
    assert typ == "OK", data
    out = []
    for line in data:
        m = re.search(rb"EMAILID \(([A-Za-z0-9_-]+)\) THREADID \(([A-Za-z0-9_-]+)\)", line)
        assert m, line
        out.append((m.group(1).decode(), m.group(2).decode()))
    return out


def test_imaplib_objectid(server):
    c = login(server)
    assert "OBJECTID" in c.capability()[1][0].decode().split()
    typ, data = c.create("Plans")
    assert typ == "OK"
    created = mailbox_id(data)
    typ, data = c.status("Plans", "(MAILBOXID MESSAGES)")
    assert typ == "OK" and mailbox_id(data) == created, data
    assert c.rename("Plans", "Projects")[0] == "OK"
    typ, data = c.status("Projects", "(MAILBOXID)")
    assert mailbox_id(data) == created, "RENAME keeps MAILBOXID"
    for m in (ROOT, REPLY, OTHER):
        assert c.append("INBOX", None, None, m)[0] == "OK"
    typ, data = c.select("INBOX")
    assert typ == "OK"
    _, codes = c.response("MAILBOXID")
    assert codes and re.fullmatch(rb"\([A-Za-z0-9_-]+\)", codes[0]), codes
    assert codes[0] != ("(%s)" % created).encode()
    ids = fetch_ids(c, "1:3")
    assert ids[0][1] == ids[1][1], "the reply is in its parent's thread"
    assert ids[2][1] != ids[0][1]
    assert len({e for e, _ in ids}) == 3
    # COPY and MOVE keep EMAILID and THREADID.
    assert c.copy("1", "Projects")[0] == "OK"
    assert c._simple_command("MOVE", "2", "Projects")[0] == "OK"
    c.select("Projects")
    assert fetch_ids(c, "1:2") == ids[:2]
    typ, data = c.search(None, "EMAILID", ids[1][0])
    assert (typ, data) == ("OK", [b"2"]), data
    typ, data = c.search(None, "THREADID", ids[0][1])
    assert (typ, data) == ("OK", [b"1 2"]), data
    try:
        typ, _ = c.search(None, "EMAILID", "M!")
    except imaplib.IMAP4.error:
        typ = "BAD"
    assert typ == "BAD", "an objectid is letters, digits, _ and -"
    c.logout()


def test_other_users_ids_find_nothing(server):
    a = login(server, "alice")
    a.append("INBOX", None, None, ROOT)
    a.select("INBOX")
    (email, thread), = fetch_ids(a, "1")
    a.logout()
    b = login(server, "bob")
    b.append("INBOX", None, None, OTHER)
    b.select("INBOX")
    assert b.search(None, "EMAILID", email) == ("OK", [b""])
    assert b.search(None, "THREADID", thread) == ("OK", [b""])
    b.logout()
