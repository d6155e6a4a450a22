"""REPLACE (RFC 8508) with Python's imaplib against the real binary: a draft replaced in place
(APPENDUID, EXISTS, EXPUNGE in one command), UID REPLACE into another mailbox, TRYCREATE,
TOOBIG."""

import imaplib

from conftest import PASSWORD


def draft(n):
    return b"Subject: draft %d\r\nMessage-ID: <d%d@example.org>\r\n\r\nversion %d\r\n" % (n, n, n)


def literal_command(c, *args, data):
    """Send `tag ARGS {n}` + data the way imaplib sends APPEND."""
    c.literal = data
    return c._simple_command(*args)


def test_imaplib_replace(make_server):
    server = make_server(extra_config="[limits]\nmax_message_size = 2000\n")
    c = imaplib.IMAP4(*server.imap)
    c.login("alice", PASSWORD)
    assert "REPLACE" in c.capability()[1][0].decode().split()
    imaplib.Commands["REPLACE"] = ("SELECTED",)
    for n in (1, 2):
        assert c.append("Drafts", "(\\Draft)", None, draft(n))[0] == "OK"
    c.select("Drafts")
    typ, data = literal_command(c, "REPLACE", "1", "Drafts", "(\\Seen \\Draft)", data=draft(3))
    assert typ == "OK", data
    assert c.response("APPENDUID")[1][0].endswith(b" 3"), "APPENDUID of the new message"
    typ, data = c.fetch("1:*", "(UID FLAGS BODY.PEEK[TEXT])")
    parts = [d for d in data if isinstance(d, tuple)]
    assert [p[1] for p in parts] == [b"version 2\r\n", b"version 3\r\n"], data
    assert b"UID 3" in parts[1][0] and b"\\Seen" in parts[1][0], data
    # UID REPLACE into another mailbox: the draft leaves Drafts, the message lands in Sent.
    typ, data = literal_command(c, "UID", "REPLACE", "3", "Sent", data=draft(4))
    assert typ == "OK", data
    assert c.search(None, "ALL") == ("OK", [b"1"])
    assert c.status("Sent", "(MESSAGES)")[1] == [b"Sent (MESSAGES 1)"]
    # A missing target: TRYCREATE, nothing expunged.
    typ, data = literal_command(c, "REPLACE", "1", "Nowhere", data=draft(5))
    assert typ == "NO" and data[0].startswith(b"[TRYCREATE]"), data
    # Too big for APPENDLIMIT: TOOBIG, nothing expunged.
    typ, data = literal_command(c, "REPLACE", "1", "Drafts", data=draft(6) + b"x" * 3000)
    assert typ == "NO" and data[0].startswith(b"[TOOBIG]"), data
    assert c.search(None, "ALL") == ("OK", [b"1"])
    c.logout()


def test_replace_of_a_message_expunged_meanwhile(server):
    """RFC 8508 §3.4: if the message cannot be removed, nothing is added."""
    a = imaplib.IMAP4(*server.imap)
    a.login("alice", PASSWORD)
    imaplib.Commands["REPLACE"] = ("SELECTED",)
    assert a.append("Drafts", None, None, draft(1))[0] == "OK"
    a.select("Drafts")
    b = imaplib.IMAP4(*server.imap)
    b.login("alice", PASSWORD)
    b.select("Drafts")
    b.store("1", "+FLAGS.SILENT", "(\\Deleted)")
    b.expunge()
    b.logout()
    typ, data = literal_command(a, "REPLACE", "1", "Sent", data=draft(2))
    assert typ == "NO" and data[-1].startswith(b"[EXPUNGEISSUED]"), data
    assert a.status("Sent", "(MESSAGES)")[1] == [b"Sent (MESSAGES 0)"]
    a.logout()


def test_replace_counts_net_quota(make_server):
    """RFC 8508 §3.4: the quota sees APPEND and EXPUNGE together, so a full account can still
    replace a draft."""
    server = make_server(extra_config="[quota]\nmessages = 2\n")
    c = imaplib.IMAP4(*server.imap)
    c.login("alice", PASSWORD)
    imaplib.Commands["REPLACE"] = ("SELECTED",)
    for n in (1, 2):
        assert c.append("Drafts", None, None, draft(n))[0] == "OK"
    assert c.append("Drafts", None, None, draft(3))[0] == "NO"
    c.select("Drafts")
    typ, data = literal_command(c, "REPLACE", "2", "Drafts", data=draft(4))
    assert typ == "OK", data
    assert c.status("Drafts", "(MESSAGES)")[1] == [b"Drafts (MESSAGES 2)"]
    c.logout()
