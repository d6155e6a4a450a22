"""PREVIEW (RFC 8970) with Python's imaplib against the real binary: the text made at delivery
(APPEND and LMTP-like multipart HTML), PREVIEW (LAZY), no text part gives ""."""

import imaplib
import re

from conftest import PASSWORD
from mkserver import sqlite_only

PLAIN = (b"Subject: lunch\r\n\r\nHello Alice,\r\n\r\n> earlier words\r\nlunch at   noon?\r\n"
         b"-- \r\nBob\r\n")
HTML = (b"Subject: news\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/alternative; boundary=xx\r\n\r\n--xx\r\n"
        b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"PHA+Q2Fmw6kgJmFtcDsgPGI+bmV3czwvYj48L3A+\r\n--xx--\r\n")
IMAGE = b"Subject: pic\r\nContent-Type: image/png\r\n\r\niVBORw0KGgo=\r\n"
LONG = b"Subject: long\r\n\r\n" + (b"word " * 100) + b"\r\n"


def test_imaplib_preview(server):
    c = imaplib.IMAP4(*server.imap)
    c.login("alice", PASSWORD)
    assert "PREVIEW" in c.capability()[1][0].decode().split()
    for m in (PLAIN, HTML, IMAGE, LONG):
        assert c.append("INBOX", None, None, m)[0] == "OK"
    c.select("INBOX")
    typ, data = c.fetch("1:3", "(PREVIEW)")
    assert typ == "OK", data
    assert data[0] == b'1 (PREVIEW "Hello Alice, lunch at noon?")', data
    # Quoted UTF-8 needs UTF8=ACCEPT: a literal otherwise.
    assert data[1] == (b"2 (PREVIEW {12}", "Café & news".encode()), data
    assert data[-1] == b'3 (PREVIEW "")', data
    typ, data = c.fetch("4", "(RFC822.SIZE PREVIEW (LAZY))")
    m = re.search(rb'PREVIEW "([^"]*)"', data[0])
    assert m and len(m.group(1)) == 199 and m.group(1).startswith(b"word word"), data
    c.logout()


@sqlite_only("clears a column of the embedded index (index.sqlite3) to fake mail stored before previews")
def test_preview_of_mail_stored_before_previews(server):
    """Mail stored before previews were kept (none in its row): LAZY says NIL, a plain PREVIEW makes
    the text from the body then."""
    import sqlite3

    c = imaplib.IMAP4(*server.imap)
    c.login("alice", PASSWORD)
    assert c.append("INBOX", None, None, PLAIN)[0] == "OK"
    db = sqlite3.connect(server.data / "index.sqlite3", timeout=10)
    db.execute("UPDATE blobs SET preview = NULL")
    db.commit()
    db.close()
    c.select("INBOX")
    assert c.fetch("1", "(PREVIEW (LAZY))")[1] == [b"1 (PREVIEW NIL)"]
    assert c.fetch("1", "(PREVIEW)")[1] == [b'1 (PREVIEW "Hello Alice, lunch at noon?")']
    c.logout()
