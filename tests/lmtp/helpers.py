"""Small clients for the LMTP tests: raw LMTP lines, IMAP reads of a mailbox, store counts."""

import imaplib
import socket
import sqlite3

from mkserver import PASSWORD


def lmtp_socket(server, unix=False, timeout=60):
    if unix:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(server.lmtp_unix)
    else:
        s = socket.create_connection(server.lmtp, timeout=timeout)
    return s


class Raw:
    """LMTP over a socket, line by line."""

    def __init__(self, server, unix=False):
        self.sock = lmtp_socket(server, unix)
        self.f = self.sock.makefile("rb")
        greeting = self.line()
        assert greeting.startswith("220 "), greeting

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        return self.f.readline().decode().rstrip("\r\n")

    def reply(self):
        """One (possibly multi-line) reply: its lines."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return lines

    def replies(self, n):
        return [self.reply()[-1] for _ in range(n)]

    def close(self):
        self.sock.close()


def messages(server, user, mailbox="INBOX"):
    """The messages of a mailbox, in UID order, as bytes."""
    imap = imaplib.IMAP4(*server.imap)
    try:
        imap.login(user, PASSWORD)
        typ, _ = imap.select(f'"{mailbox}"', readonly=True)
        assert typ == "OK", (user, mailbox)
        typ, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
        return [d[1] for d in data if isinstance(d, tuple)]
    finally:
        try:
            imap.logout()
        except Exception:
            pass


def distinct_bodies(server):
    """Rows in the store's table of distinct message bodies."""
    db = sqlite3.connect(f"file:{server.data / 'index.sqlite3'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM blobs").fetchone()[0]
    finally:
        db.close()
