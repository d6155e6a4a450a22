"""CATENATE (RFC 4469) with Python's imaplib against the real binary: a draft rebuilt from the
parts of stored messages by URL (imaplib sends one literal at most, so URL parts only here;
TEXT literals are in the session transcript rfc4469-catenate.imap and tests/hostile)."""

import imaplib

from conftest import PASSWORD

DRAFT = (b"Subject: trip\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
         b"--b\r\nContent-Type: text/plain\r\n\r\nold text\r\n--b\r\n"
         b"Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n"
         b"--b--\r\n")
NOTE = b"Subject: note\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nnew text\r\n--b\r\n"
END = b"Subject: end\r\n\r\n\r\n--b--\r\n"


def test_imaplib_catenate(server):
    c = imaplib.IMAP4(*server.imap)
    c.login("alice", PASSWORD)
    assert "CATENATE" in c.capability()[1][0].decode().split()
    for m in (DRAFT, NOTE, END):
        assert c.append("Drafts", None, None, m)[0] == "OK"
    c.select("Drafts")
    uidvalidity = c.response("UIDVALIDITY")[1][0].decode()
    # The old draft's header and attachment around the note's new text part.
    parts = (f'URL "/Drafts;UIDVALIDITY={uidvalidity}/;UID=1/;SECTION=HEADER" '
             f'URL ";UID=2/;SECTION=TEXT" '
             f'URL "/Drafts/;UID=1/;SECTION=2.MIME" URL "/Drafts/;UID=1/;SECTION=2" '
             f'URL ";UID=3/;SECTION=TEXT"')
    typ, data = c._simple_command("APPEND", "Drafts", "(\\Draft)", f"CATENATE ({parts.strip()})")
    assert typ == "OK", data
    typ, data = c.fetch("4", "(BODY.PEEK[1] BODY.PEEK[2])")
    assert typ == "OK", data
    assert data[0][1] == b"new text", data
    assert data[1][1] == b"UEsDBA==", data
    # A UIDVALIDITY that does not match: BADURL with the URL, nothing stored.
    typ, data = c._simple_command("APPEND", "Drafts", 'CATENATE (URL "/Drafts;UIDVALIDITY=1/;UID=1")')
    assert typ == "NO" and data[-1].startswith(b'[BADURL "/Drafts;UIDVALIDITY=1/;UID=1"]'), data
    assert c.status("Drafts", "(MESSAGES)")[1] == [b"Drafts (MESSAGES 4)"]
    c.logout()
