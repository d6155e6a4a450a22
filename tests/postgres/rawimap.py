"""A small IMAP client over a raw socket for the multi-node tests: it keeps every untagged line
of an answer (imaplib drops or merges them), speaks IDLE, and parses the few response codes
and items the tests check (APPENDUID, COPYUID, VANISHED, FETCH UID/FLAGS/MODSEQ)."""

import re
import select
import socket
import time

from conftest import PASSWORD

FETCH_RE = re.compile(rb"^\* \d+ FETCH \((.*)\)\r?\n?$")
UID_RE = re.compile(rb"UID (\d+)")
MODSEQ_RE = re.compile(rb"MODSEQ \((\d+)\)")
FLAGS_RE = re.compile(rb"FLAGS \(([^)]*)\)")


class Closed(Exception):
    """The server closed the connection (or it broke)."""


def uid_set(text):
    """`1:3,7` -> [1, 2, 3, 7]"""
    out = []
    for part in text.split(","):
        if ":" in part:
            a, b = (int(x) for x in part.split(":"))
            out.extend(range(min(a, b), max(a, b) + 1))
        else:
            out.append(int(part))
    return out


def compact(uids):
    """[1, 2, 3, 7] -> `1:3,7`"""
    uids = sorted(uids)
    parts, i = [], 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        parts.append(str(uids[i]) if i == j else f"{uids[i]}:{uids[j]}")
        i = j + 1
    return ",".join(parts)


def parse_fetch(line):
    """(uid, flags frozenset, modseq) of an untagged FETCH line, or None."""
    m = FETCH_RE.match(line)
    if not m:
        return None
    body = m.group(1)
    uid = UID_RE.search(body)
    ms = MODSEQ_RE.search(body)
    fl = FLAGS_RE.search(body)
    return (int(uid.group(1)) if uid else None,
            frozenset(fl.group(1).decode().split()) if fl else None,
            int(ms.group(1)) if ms else None)


def vanished(line):
    """The UIDs of a `* VANISHED [(EARLIER)] set` line, or []."""
    if not line.startswith(b"* VANISHED "):
        return []
    rest = line[len(b"* VANISHED "):].strip()
    if rest.startswith(b"(EARLIER) "):
        rest = rest[len(b"(EARLIER) "):]
    return uid_set(rest.decode())


class Client:
    def __init__(self, addr, user, timeout=30):
        self.addr = addr
        self.s = socket.create_connection(addr, timeout=timeout)
        self.buf = b""
        self.n = 0
        greeting = self._line()
        if not greeting.startswith(b"* OK"):
            raise Closed(greeting)
        self.ok(f"LOGIN {user} {PASSWORD}")
        self.ok("ENABLE QRESYNC")

    def _fill(self):
        try:
            got = self.s.recv(65536)
        except OSError as e:
            raise Closed(str(e)) from e
        if not got:
            raise Closed("connection closed")
        self.buf += got

    def _line(self):
        while b"\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def readline(self):
        line = self._line()
        # A literal in an untagged answer (not expected here, but read it whole).
        m = re.search(rb"\{(\d+)\}\r\n$", line)
        if m:
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill()
            line += self.buf[:n]
            self.buf = self.buf[n:]
            line += self.readline()
        return line

    def send(self, data):
        try:
            self.s.sendall(data)
        except OSError as e:
            raise Closed(str(e)) from e

    def command(self, text, literal=None):
        """Runs one command: (untagged lines, tagged line)."""
        self.n += 1
        tag = f"t{self.n}".encode()
        if literal is None:
            self.send(tag + b" " + text.encode() + b"\r\n")
        else:
            self.send(tag + b" " + text.encode() + f" {{{len(literal)}}}\r\n".encode())
            untagged = []
            while True:
                line = self.readline()
                if line.startswith(b"+"):
                    break
                if line.startswith(tag + b" "):
                    return untagged, line
                untagged.append(line)
            self.send(literal + b"\r\n")
        untagged = []
        while True:
            line = self.readline()
            if line.startswith(tag + b" "):
                return untagged, line
            if line.startswith(b"* BYE"):
                raise Closed(line)
            untagged.append(line)

    def ok(self, text, literal=None):
        untagged, tagged = self.command(text, literal)
        assert b" OK" in tagged[:12], (text, tagged)
        return untagged, tagged

    def idle(self):
        self.n += 1
        self.idle_tag = f"t{self.n}".encode()
        self.send(self.idle_tag + b" IDLE\r\n")
        line = self.readline()
        assert line.startswith(b"+"), line

    def done(self):
        """Ends IDLE: the untagged lines that came before the tagged OK."""
        self.send(b"DONE\r\n")
        out = []
        while True:
            line = self.readline()
            if line.startswith(self.idle_tag + b" "):
                assert b" OK" in line, line
                return out
            out.append(line)

    def wait_line(self, within):
        """The next untagged line during IDLE, or None after `within` seconds."""
        if b"\n" not in self.buf:
            r, _, _ = select.select([self.s], [], [], max(within, 0))
            if not r:
                return None
        return self.readline()

    def view(self):
        """{uid: (flags, modseq)} by UID FETCH 1:* (FLAGS MODSEQ)."""
        untagged, _ = self.ok("UID FETCH 1:* (FLAGS MODSEQ)")
        out = {}
        for line in untagged:
            f = parse_fetch(line)
            if f and f[0] is not None:
                out[f[0]] = (f[1], f[2])
        return out

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def status_code(tagged, name):
    """The numbers of `[NAME a b c]` in a tagged line, as strings."""
    m = re.search(rb"\[" + name.encode() + rb" ([^\]]*)\]", tagged)
    return m.group(1).decode().split() if m else None


def wait_until(pred, within, step=0.05):
    end = time.monotonic() + within
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()
