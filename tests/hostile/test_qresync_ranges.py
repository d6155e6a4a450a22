"""QRESYNC parameters built to hurt (RFC 7162 §3.2.5): known UIDs and sequence match data
spanning all 2^32 numbers, on a mailbox whose tombstones are pruned at once (so the answer is
computed as "every UID not present" over the whole range). The answer must be ranges, never
one entry per UID: each command is answered in well under a second, with a bounded response,
a fresh client is answered within 1 s, and the server's memory grows by less than a bound."""

import socket
import time

from conftest import PASSWORD, assert_responsive

N = 2000
# Most these commands may add to the server's RSS.
RSS_BOUND_KIB = 32 * 1024
MAX = 4294967295


class Client:
    def __init__(self, server, timeout=30):
        self.sock = socket.create_connection(server.imap, timeout=timeout)
        self.f = self.sock.makefile("rb")
        assert self.f.readline().startswith(b"* OK")
        self.n = 0
        self.ok(f"LOGIN alice {PASSWORD}")

    def cmd(self, line):
        self.n += 1
        tag = f"t{self.n}".encode()
        self.sock.sendall(tag + b" " + line.encode() + b"\r\n")
        untagged = []
        while True:
            got = self.f.readline()
            assert got, "connection closed"
            if got.startswith(tag + b" "):
                return got[len(tag) + 1:], untagged
            untagged.append(got)

    def ok(self, line):
        status, untagged = self.cmd(line)
        assert status.startswith(b"OK"), (line, status)
        return untagged


def code(lines, name):
    for line in lines:
        if f"[{name} ".encode() in line:
            return int(line.split(f"[{name} ".encode())[1].split(b"]")[0])
    raise AssertionError(name)


def test_huge_qresync_ranges_stay_ranges(make_server):
    server = make_server(extra_config="[store]\ntombstone_days = 0\n")
    c = Client(server)
    # N small messages in MULTIAPPENDs of 100, then every other one expunged (pruned at once).
    for first in range(0, N, 100):
        parts = []
        for i in range(first, first + 100):
            data = f"Subject: {i}\r\n\r\nx\r\n"
            parts.append(f" {{{len(data)}+}}\r\n{data}")
        c.ok("APPEND INBOX" + "".join(parts))
    c.ok("ENABLE QRESYNC")
    lines = c.ok("SELECT INBOX")
    uv = code(lines, "UIDVALIDITY")
    odd = ",".join(str(u) for u in range(1, N + 1, 2))
    c.ok(f"UID STORE {odd} +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    before = server.rss_kib()

    for line in (
        f"SELECT INBOX (QRESYNC ({uv} 1 1:{MAX}))",
        f"SELECT INBOX (QRESYNC ({uv} 1 1:{MAX} (1:{MAX} 1:{MAX})))",
        f"EXAMINE INBOX (QRESYNC ({uv} 1 {MAX}:1 (1:{MAX} 2:{MAX},1)))",
        f"UID FETCH 1:{MAX} (FLAGS) (CHANGEDSINCE 1 VANISHED)",
        f"UID FETCH {MAX}:1,* (FLAGS) (CHANGEDSINCE 0 VANISHED)",
    ):
        start = time.monotonic()
        untagged = c.ok(line)
        took = time.monotonic() - start
        assert took < 2.0, f"{line}: {took:.2f} s"
        size = sum(len(x) for x in untagged)
        # The odd UIDs below N as ranges of one (about 5 bytes each) plus N/2 FETCH lines.
        assert size < 200 * N, f"{line}: {size} bytes"
        vanished = [x for x in untagged if x.startswith(b"* VANISHED (EARLIER)")]
        assert len(vanished) <= 1
        assert_responsive(server)
    # The answer over the whole range: every odd UID below N, nothing at or above UIDNEXT.
    untagged = c.ok(f"UID FETCH 1:{MAX} (UID) (CHANGEDSINCE 1 VANISHED)")
    uids = untagged[0].split()[-1].decode()
    assert uids.startswith("1,3,5,") and uids.endswith(f",{N - 1}"), uids[-40:]
    grown = server.rss_kib() - before
    assert grown < RSS_BOUND_KIB, f"RSS grew by {grown} KiB"
    assert_responsive(server)
