"""Python imaplib with UIDONLY (RFC 9586) against the real server: a client that pages a big
mailbox by UID only enables UIDONLY, gets `* uid UIDFETCH` answers and VANISHED, and is refused
message numbers with BAD [UIDREQUIRED]."""

import imaplib

import pytest


def login(server):
    c = imaplib.IMAP4(*server.imap)
    typ, _ = c.login("alice", "pass")
    assert typ == "OK"
    return c


def test_uidonly_session(server):
    c = login(server)
    typ, data = c.capability()
    assert "UIDONLY" in data[0].decode().split()
    for n in range(1, 6):
        typ, _ = c.append("INBOX", r"(\Seen)" if n == 1 else None, None,
                          f"Subject: m{n}\r\n\r\nbody {n}\r\n".encode())
        assert typ == "OK"
    typ, data = c.enable("UIDONLY")
    assert typ == "OK" and c.response("ENABLED")[1] == [b"UIDONLY"], data
    typ, _ = c.select("INBOX")
    assert typ == "OK"

    # §3.3: UID FETCH answers are UIDFETCH, keyed by UID.
    typ, _ = c.uid("FETCH", "2:4", "(FLAGS)")
    assert typ == "OK"
    _, lines = c.response("UIDFETCH")
    assert lines == [rb"2 (FLAGS (\Recent))", rb"3 (FLAGS (\Recent))",
                     rb"4 (FLAGS (\Recent))"], lines
    typ, _ = c.uid("STORE", "3", "+FLAGS", r"(\Deleted)")
    assert typ == "OK"
    assert c.response("UIDFETCH")[1] == [rb"3 (FLAGS (\Deleted \Recent))"]

    # §3, §3.2, §3.5: message numbers are BAD [UIDREQUIRED].
    for call in (lambda: c.fetch("1:2", "(FLAGS)"),
                 lambda: c.store("1", "+FLAGS", r"(\Seen)"),
                 lambda: c.search(None, "ALL"),
                 lambda: c.uid("SEARCH", "1:3"),
                 lambda: c.copy("1", "INBOX")):
        with pytest.raises(imaplib.IMAP4.error, match="UIDREQUIRED"):
            call()

    typ, data = c.uid("SEARCH", "UID", "1:*", "UNSEEN")
    assert typ == "OK" and data == [b"2 3 4 5"], data

    # §3.4: EXPUNGE answers VANISHED.
    typ, _ = c.expunge()
    assert typ == "OK"
    assert c.response("VANISHED")[1] == [b"3"]
    assert c.response("EXPUNGE")[1] == [None]

    # §3.6: another client's change arrives as UIDFETCH / VANISHED.
    other = login(server)
    other.select("INBOX")
    other.uid("STORE", "5", "+FLAGS", r"(\Flagged \Deleted)")
    other.expunge()
    other.logout()
    typ, _ = c.noop()
    assert typ == "OK"
    assert c.response("VANISHED")[1] == [b"5"]
    c.logout()
