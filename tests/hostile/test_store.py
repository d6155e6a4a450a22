"""Store and APPEND hardening (issue 7): MULTIAPPEND takes one message at a time from the
spool into the store's transaction, so memory does not grow with the number or size of the
messages; a failing MULTIAPPEND stores none of them; a literal8's binary part keeps its bytes."""

import base64
import hashlib
import os
import random
import socket
import threading
import time

from conftest import PASSWORD, assert_responsive

MIB = 1 << 20


def connect(server):
    s = socket.create_connection(server.imap, timeout=120)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    return s, f


def command(s, f, tag, line):
    s.sendall(tag + b" " + line + b"\r\n")
    return until_tagged(f, tag)


def until_tagged(f, tag):
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed"
        lines.append(line)
        if line.startswith(tag + b" "):
            return lines


def login(server, user="alice"):
    s, f = connect(server)
    r = command(s, f, b"l", f"LOGIN {user} {PASSWORD}".encode())
    assert r[-1].startswith(b"l OK"), r
    return s, f


def message(i, size):
    """A message of about `size` bytes with bare-LF line ends (the server adds the CRs)."""
    head = (f"From: a@example.org\nSubject: big {i}\nMIME-Version: 1.0\n"
            "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n").encode()
    raw = os.urandom(size * 3 // 4 - len(head))
    b64 = base64.encodebytes(raw)  # 76-character lines ending in bare LF
    return head + b64


def count(server, mailbox=b"INBOX"):
    s, f = login(server)
    r = command(s, f, b"s", b"STATUS " + mailbox + b" (MESSAGES)")
    s.close()
    line = [x for x in r if x.startswith(b"* STATUS")][0]
    return int(line.split(b"MESSAGES ")[1].split(b")")[0])


class RssSampler:
    def __init__(self, server):
        self.server, self.peak, self.stop = server, server.rss_kib(), threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self.server.rss_kib())
            time.sleep(0.02)

    def done(self):
        self.stop.set()
        self.thread.join()
        return self.peak


def test_multiappend_memory_does_not_grow_with_messages(server):
    n, size = 20, 4 * MIB
    msgs = [message(i, size) for i in range(n)]
    assert_responsive(server)
    s, f = login(server)
    base = server.rss_kib()
    sampler = RssSampler(server)
    s.sendall(b"a APPEND INBOX")
    for m in msgs:
        s.sendall(b" (\\Seen) {%d+}\r\n" % len(m))
        s.sendall(m)
    s.sendall(b"\r\n")
    done = {}
    t = threading.Thread(target=lambda: done.setdefault("r", until_tagged(f, b"a")))
    t.start()
    while t.is_alive():
        assert_responsive(server)
        t.join(0.3)
    peak = sampler.done()
    r = done["r"]
    assert r[-1].startswith(b"a OK"), r[-1]
    growth = (peak - base) // 1024
    print(f"\nMULTIAPPEND {n} x {size // MIB} MiB: RSS {base // 1024} -> peak {peak // 1024} MiB "
          f"(+{growth} MiB)")
    assert growth < 48, f"RSS grew by {growth} MiB for {n} x {size // MIB} MiB"
    assert_responsive(server)
    # All there, byte-exact (in their CRLF form).
    r = command(s, f, b"b", b"SELECT INBOX")
    assert any(b"* %d EXISTS" % n in x for x in r), r
    for i, m in enumerate(msgs, 1):
        s.sendall(b"c%d FETCH %d BODY.PEEK[]\r\n" % (i, i))
        head = f.readline()
        size = int(head.rsplit(b"{", 1)[1].split(b"}")[0])
        body = f.read(size)
        until_tagged(f, b"c%d" % i)
        want = m.replace(b"\n", b"\r\n")
        assert len(body) == len(want) and hashlib.sha256(body).digest() == hashlib.sha256(want).digest(), \
            f"message {i} changed"
    s.close()


def test_failing_multiappend_stores_none(make_server):
    server = make_server(extra_config="[limits]\nmax_message_size = 4194304\n")
    small = [message(i, 1 * MIB) for i in range(3)]
    # The last message is over the size limit.
    s, f = login(server)
    s.sendall(b"a APPEND INBOX")
    for m in small:
        s.sendall(b" {%d}\r\n" % len(m))
        line = f.readline()
        assert line.startswith(b"+"), line
        s.sendall(m)
    s.sendall(b" {%d}\r\n" % (5 * MIB))
    r = until_tagged(f, b"a")
    assert r[-1].startswith((b"a NO", b"a BAD")), r[-1]
    s.close()
    assert count(server) == 0
    # The last message has a bad date.
    s, f = login(server)
    s.sendall(b"b APPEND INBOX")
    for m in small:
        s.sendall(b" {%d+}\r\n" % len(m) + m)
    s.sendall(b' "31-Foo-2020 00:00:00 +0000" {5+}\r\nx: y\r\n\r\n')
    r = until_tagged(f, b"b")
    assert r[-1].startswith((b"b NO", b"b BAD")), r[-1]
    s.close()
    assert count(server) == 0
    assert_responsive(server)
    r = server.cli("check")
    assert r.returncode == 0, r.stdout + r.stderr


def test_literal8_binary_part_is_byte_exact(server):
    """RFC 3516 §4.4: the server may change the CTE, but must not lose data."""
    sent = b"a\nb\x00c\nd"
    msg = (b"From: a@example.org\r\nSubject: bin\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=\"xx\"\r\n\r\n"
           b"--xx\r\nContent-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: binary\r\n\r\n" + sent + b"\r\n--xx--\r\n")
    s, f = login(server)
    s.sendall(b"a APPEND INBOX ~{%d+}\r\n" % len(msg) + msg + b"\r\n")
    r = until_tagged(f, b"a")
    assert r[-1].startswith(b"a OK"), r
    command(s, f, b"b", b"SELECT INBOX")
    r = command(s, f, b"c", b"FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])")
    data = b"".join(r)
    assert b"BINARY.SIZE[1] 7" in data, data
    assert b"~{7}\r\n" + sent in data, data
    r = command(s, f, b"d", b"FETCH 1 BODY.PEEK[]")
    stored = b"".join(r[1:-1])
    assert b"\x00" not in stored
    s.close()


def test_literal8_spooled_binary_part_is_byte_exact(server):
    """The same for a literal8 big enough to be spooled (over 256 KiB): the store converts it."""
    sent = os.urandom(400_000)
    msg = (b"From: a@example.org\r\nSubject: bin\r\nMIME-Version: 1.0\r\n"
           b"Content-Transfer-Encoding: binary\r\n\r\n" + sent)
    s, f = login(server)
    s.sendall(b"a APPEND INBOX ~{%d+}\r\n" % len(msg) + msg + b"\r\n")
    r = until_tagged(f, b"a")
    assert r[-1].startswith(b"a OK"), r
    command(s, f, b"b", b"SELECT INBOX")
    s.sendall(b"c FETCH 1 BINARY.PEEK[1]\r\n")
    head = f.readline()
    assert b"~{%d}" % len(sent) in head, head
    assert f.read(len(sent)) == sent
    until_tagged(f, b"c")
    s.close()


def timed_search(s, f, needle, runs=10):
    command(s, f, b"w", b"SEARCH BODY " + needle)
    start = time.perf_counter()
    for _ in range(runs):
        r = command(s, f, b"q", b"SEARCH BODY " + needle)
        assert r[-1].startswith(b"q OK"), r
    return (time.perf_counter() - start) / runs


def test_one_accounts_words_do_not_slow_anothers_search(server):
    """Item 9: the substring search vocabulary is per account. bob's infix search must not
    slow down when alice stores 2 MB of random words, nor after she expunged them."""
    rnd = random.Random(5)
    words = ["alpha", "budget", "meeting", "report", "quarterly", "schedule"]
    bs, bf = login(server, "bob")
    for i in range(100):
        body = " ".join(rnd.choice(words) for _ in range(200))
        m = f"Subject: m{i:03}\r\n\r\n{body}".encode()
        bs.sendall(b"a APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
        assert until_tagged(bf, b"a")[-1].startswith(b"a OK")
    command(bs, bf, b"s", b"SELECT INBOX")
    base = timed_search(bs, bf, b"uarterl")

    letters = "abcdefghijklmnopqrstuvwxyz"
    big = " ".join("".join(rnd.choice(letters) for _ in range(rnd.randint(4, 12)))
                   for _ in range(230_000)).encode()
    msg = b"Subject: random\r\n\r\n" + big + b"\r\n"
    a, af = login(server, "alice")
    a.sendall(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    assert until_tagged(af, b"a")[-1].startswith(b"a OK")
    command(a, af, b"x", b"SEARCH BODY zzzzq")  # alice's body is indexed now
    after = timed_search(bs, bf, b"uarterl")
    command(a, af, b"s", b"SELECT INBOX")
    command(a, af, b"e", b"STORE 1 +FLAGS.SILENT (\\Deleted)")
    command(a, af, b"f", b"EXPUNGE")
    time.sleep(1)
    expunged = timed_search(bs, bf, b"uarterl")
    print(f"\nbob SEARCH BODY infix: {base * 1000:.1f} ms, {after * 1000:.1f} ms after alice's "
          f"{len(msg) // 1024} KiB of random words, {expunged * 1000:.1f} ms after her expunge")
    assert after < 3 * base + 0.005, (base, after)
    assert expunged < 3 * base + 0.005, (base, expunged)
    assert_responsive(server)
    a.close()
    bs.close()
    r = server.cli("check")
    assert r.returncode == 0, r.stdout + r.stderr
