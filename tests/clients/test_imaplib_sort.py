"""Python imaplib's sort() and thread() (RFC 5256) against the real server: the commands an
aerc-like client sends for `sort -r date` and a threaded view."""

import imaplib
import re


def message(n, subject, date, extra=""):
    return (f"From: user{n} <u{n}@example.org>\r\nTo: bob@example.org\r\n"
            f"Subject: {subject}\r\nDate: {date}\r\nMessage-ID: <m{n}@example.org>\r\n"
            f"{extra}\r\nbody {n}\r\n").encode()


MESSAGES = [
    message(1, "plans", "Mon, 3 Jan 2000 10:00:00 +0000"),
    message(2, "Re: plans", "Tue, 4 Jan 2000 10:00:00 +0000", "In-Reply-To: <m1@example.org>\r\n"),
    message(3, "news", "Sun, 2 Jan 2000 10:00:00 +0000"),
    message(4, "Re: plans", "Wed, 5 Jan 2000 10:00:00 -0500",
            "References: <m1@example.org> <m2@example.org>\r\n"),
]


def test_sort_and_thread(server):
    c = imaplib.IMAP4(*server.imap)
    typ, _ = c.login("alice", "pass")
    assert typ == "OK"
    typ, data = c.capability()
    caps = data[0].decode().split()
    for cap in ("SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES",
                "THREAD=REFS"):
        assert cap in caps, caps
    for n, m in enumerate(MESSAGES):
        typ, _ = c.append("INBOX", None, f'"1{n}-Jan-2000 12:00:00 +0000"', m)
        assert typ == "OK"
    typ, _ = c.select("INBOX")
    assert typ == "OK"

    typ, data = c.sort("(REVERSE DATE)", "UTF-8", "ALL")
    assert typ == "OK" and data == [b"4 2 1 3"], data
    typ, data = c.sort("(SUBJECT DATE)", "UTF-8", "ALL")
    assert data == [b"3 1 2 4"], data
    typ, data = c.uid("SORT", "(REVERSE ARRIVAL)", "UTF-8", "SUBJECT", "plans")
    assert data == [b"4 2 1"], data
    typ, data = c.sort("(DATE)", "UTF-8", "TEXT", "nothing-like-this")
    assert typ == "OK" and data == [b""], data

    typ, data = c.thread("REFERENCES", "UTF-8", "ALL")
    assert typ == "OK" and data == [b"(3)(1 2 4)"], data
    typ, data = c.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
    assert data == [b"(3)(1 (2)(4))"], data
    typ, data = c.thread("REFS", "UTF-8", "ALL")
    assert data == [b"(3)(1 2 4)"], data

    # ESORT: the answer is an ESEARCH response, in sort order.
    typ, data = c._simple_command("SORT", "RETURN", "(MIN MAX COUNT ALL)", "(REVERSE DATE)",
                                  "UTF-8", "ALL")
    assert typ == "OK"
    typ, data = c._untagged_response(typ, data, "ESEARCH")
    line = data[0].decode()
    assert re.fullmatch(r'\(TAG "\w+"\) MIN 4 MAX 3 ALL 4,2,1,3 COUNT 4', line), line

    typ, data = c.sort("(DATE)", "X-NO-SUCH-CHARSET", "ALL")
    assert typ == "NO" and b"[BADCHARSET" in data[0], (typ, data)
    c.logout()
