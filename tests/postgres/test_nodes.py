"""Two mailkeep nodes on one PostgreSQL database: a session on node A sees, in IDLE and within
1 s, an APPEND, a flag change and an expunge made on node B (LISTEN/NOTIFY), and UIDs stay
unique and ascending when both nodes append at once."""

import imaplib
import socket
import threading
import time

from conftest import PASSWORD

MSG = b"From: b@example.org\r\nSubject: hello\r\n\r\nfrom node B\r\n"


class Idler:
    """A raw IMAP session on a node, selected on INBOX and idling."""

    def __init__(self, addr):
        self.s = socket.create_connection(addr, timeout=5)
        self.f = self.s.makefile("rb")
        assert self.f.readline().startswith(b"* OK")
        self.cmd(b"a LOGIN alice " + PASSWORD.encode())
        self.cmd(b"b SELECT INBOX")
        self.s.sendall(b"c IDLE\r\n")
        assert self.f.readline().startswith(b"+ ")

    def cmd(self, line):
        tag = line.split()[0]
        self.s.sendall(line + b"\r\n")
        out = []
        while True:
            l = self.f.readline()
            assert l, "connection closed"
            out.append(l)
            if l.startswith(tag + b" "):
                assert l.startswith(tag + b" OK"), l
                return out

    def wait_for(self, needle, within=1.0):
        """The first untagged line containing `needle`, and how long it took."""
        start = time.monotonic()
        self.s.settimeout(within)
        while True:
            left = within - (time.monotonic() - start)
            assert left > 0, f"{needle!r} not seen within {within} s"
            self.s.settimeout(left)
            l = self.f.readline()
            assert l, "connection closed"
            if needle in l:
                return l, time.monotonic() - start

    def close(self):
        self.s.close()


def login(node):
    c = imaplib.IMAP4(*node.imap)
    c.login("alice", PASSWORD)
    return c


def test_idle_on_one_node_sees_changes_made_on_another(pg, make_node):
    url = pg.create_database()
    a = make_node(url, users=("alice",))
    b = make_node(url)
    idler = Idler(a.imap)
    try:
        c = login(b)
        typ, _ = c.append("INBOX", None, None, MSG)
        assert typ == "OK"
        line, took = idler.wait_for(b"EXISTS")
        assert line.startswith(b"* 1 EXISTS"), line
        print(f"APPEND on B seen in IDLE on A after {took * 1000:.0f} ms")
        c.select("INBOX")
        c.store("1", "+FLAGS", "(\\Flagged)")
        line, took = idler.wait_for(b"FETCH")
        assert b"\\Flagged" in line, line
        print(f"STORE on B seen on A after {took * 1000:.0f} ms")
        c.store("1", "+FLAGS", "(\\Deleted)")
        c.expunge()
        line, took = idler.wait_for(b"EXPUNGE")
        assert line.startswith(b"* 1 EXPUNGE"), line
        print(f"EXPUNGE on B seen on A after {took * 1000:.0f} ms")
        c.logout()
    finally:
        idler.close()


def test_uids_unique_when_two_nodes_append_at_once(pg, make_node):
    url = pg.create_database()
    a = make_node(url, users=("alice",))
    b = make_node(url)
    got = []
    errors = []

    def writer(node, n):
        try:
            c = login(node)
            for i in range(n):
                typ, data = c.append("INBOX", None, None, MSG + str(i).encode() + b"\r\n")
                assert typ == "OK", data
                # [APPENDUID uidvalidity uid]
                text = data[0].decode()
                got.append(int(text.split("APPENDUID ")[1].split()[1].rstrip("]")))
            c.logout()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(node, 10)) for node in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(got) == 40 and len(set(got)) == 40, sorted(got)
    for node in (a, b):
        c = login(node)
        c.select("INBOX")
        typ, data = c.uid("SEARCH", None, "ALL")
        assert sorted(int(x) for x in data[0].split()) == sorted(got)
        typ, data = c.status("INBOX", "(UIDNEXT MESSAGES)")
        assert f"UIDNEXT {max(got) + 1}".encode() in data[0], data
        c.logout()
    assert pg.sql(url, "SELECT count(*) FROM messages").strip() == "40"
