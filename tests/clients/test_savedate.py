"""SAVEDATE (RFC 8514) with Python's imaplib against the real binary: FETCH SAVEDATE is the
time of APPEND / COPY / MOVE, not INTERNALDATE; SEARCH SAVEDON / SAVEDSINCE / SAVEDBEFORE /
SAVEDATESUPPORTED."""

import email.utils
import imaplib
import re
import time

from conftest import PASSWORD

MSG = b"Subject: old\r\n\r\nfrom long ago\r\n"


def savedate(c, seq):
    typ, data = c.fetch(seq, "(INTERNALDATE SAVEDATE)")
    assert typ == "OK", data
    m = re.search(rb'SAVEDATE "([^"]+)"', data[0])
    assert m, data
    return imaplib.Internaldate2tuple(b'INTERNALDATE "' + m.group(1) + b'"'), data[0]


def test_imaplib_savedate(server):
    c = imaplib.IMAP4(*server.imap)
    c.login("alice", PASSWORD)
    assert "SAVEDATE" in c.capability()[1][0].decode().split()
    before = time.time()
    # INTERNALDATE far in the past; the save date is now.
    assert c.append("INBOX", None, '"01-Jan-2001 10:00:00 +0000"', MSG)[0] == "OK"
    c.select("INBOX")
    saved, line = savedate(c, "1")
    assert b'INTERNALDATE "01-Jan-2001' in line, line
    assert abs(time.mktime(saved) - before) < 120, line
    today = time.strftime("%d-%b-%Y")
    assert c.search(None, "SAVEDON", today) == ("OK", [b"1"])
    assert c.search(None, "SAVEDSINCE", "1-Jan-2020") == ("OK", [b"1"])
    assert c.search(None, "SAVEDBEFORE", "1-Jan-2020") == ("OK", [b""])
    assert c.search(None, "SAVEDATESUPPORTED") == ("OK", [b"1"])
    # INTERNALDATE keys still see the old date.
    assert c.search(None, "BEFORE", "1-Jan-2020") == ("OK", [b"1"])
    # A copy has its own save date, which is also now.
    assert c.copy("1", "Archive")[0] == "OK"
    c.select("Archive")
    saved2, _ = savedate(c, "1")
    assert time.mktime(saved2) >= time.mktime(saved)
    c.logout()
