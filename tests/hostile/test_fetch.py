"""Hostile FETCH: answers far bigger than the command must stream with bounded memory.

Issue 7 item 4: `FETCH 1 (BODY.PEEK[]<0.N> BODY.PEEK[]<1.N> ...)` asks for many copies of one
big message in a few bytes of command, and `FETCH 1:* BODY.PEEK[]` for a whole mailbox. The
server must write such answers as the client reads them, holding about one message at a
time, and keep answering other clients meanwhile.
"""

import socket
import threading
import time

from conftest import PASSWORD, assert_responsive

MiB = 1024 * 1024


class Client:
    """A minimal IMAP client that reads answers without keeping literal contents."""

    def __init__(self, server):
        self.sock = socket.create_connection(server.imap, timeout=60)
        self.f = self.sock.makefile("rb", buffering=256 * 1024)
        assert self.f.readline().startswith(b"* OK")
        self.n = 0

    def close(self):
        self.f.close()
        self.sock.close()

    def command(self, text, literal=None, pause=None):
        """Send a command (with at most one trailing synchronizing literal); return the tagged
        line, the untagged lines with `{n}` announcements, and the literal bytes seen."""
        self.n += 1
        tag = f"t{self.n}".encode()
        if literal is None:
            self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + text.encode() + f" {{{len(literal)}}}\r\n".encode())
            line = self.f.readline()
            assert line.startswith(b"+"), line
            self.sock.sendall(literal + b"\r\n")
        return self.read_answer(tag, pause)

    def read_answer(self, tag, pause=None):
        """`pause`: called once, after the first chunk of literal data is read."""
        lines, literal_bytes = [], 0
        while True:
            line = self.f.readline()
            assert line, "connection closed"
            if line.startswith(tag + b" "):
                return line, lines, literal_bytes
            if len(lines) < 10_000:
                lines.append(line[:200])
            while line.endswith(b"}\r\n") and b"{" in line:
                n = int(line[line.rindex(b"{") + 1:-3])
                literal_bytes += n
                while n:  # read and drop
                    chunk = self.f.read(min(n, 1 << 20))
                    assert chunk, "connection closed inside a literal"
                    n -= len(chunk)
                    if pause:
                        pause()
                        pause = None
                line = self.f.readline()  # the rest of the response after the literal

    def multiappend(self, messages):
        """One APPEND of several messages (RFC 3502) in LITERAL+ literals (RFC 7888)."""
        self.n += 1
        tag = f"t{self.n}".encode()
        self.sock.sendall(tag + b" APPEND INBOX")
        for m in messages:
            self.sock.sendall(f" {{{len(m)}+}}\r\n".encode() + m)
        self.sock.sendall(b"\r\n")
        tagged, lines, _ = self.read_answer(tag)
        assert b" OK " in tagged, (tagged, lines[-3:])

    def ok(self, text, literal=None, pause=None):
        tagged, lines, nbytes = self.command(text, literal, pause)
        assert b" OK " in tagged, (text[:80], tagged, lines[-3:])
        return lines, nbytes


def message(seed, size):
    """A text message of about `size` bytes (few distinct words: cheap to index)."""
    head = f"From: a@example.org\r\nSubject: big {seed}\r\n\r\n".encode()
    line = f"message {seed} line %08d of a big message\r\n"
    count = (size - len(head)) // len(line % 0) + 1
    return head + "".join(line % n for n in range(count)).encode()


def logged_in(server):
    c = Client(server)
    c.ok(f"LOGIN alice {PASSWORD}")
    return c


def fetch_under_watch(server, client, command):
    """Run `command`, reading and dropping its answer, while sampling the server's RSS; a
    fresh client must be answered within 1 s while the answer is under way (the reader waits
    for it after its first chunk) and after. Returns (literal bytes read, peak RSS in KiB)."""
    result, peak = {}, [server.rss_kib()]
    done, midway, checked = threading.Event(), threading.Event(), threading.Event()

    def pause():
        midway.set()
        checked.wait(10)

    def run():
        try:
            result["answer"] = client.ok(command, pause=pause)
        except BaseException as e:  # reported by the main thread
            result["error"] = e
        finally:
            midway.set()
            done.set()

    start = time.monotonic()
    t = threading.Thread(target=run)
    t.start()
    midway.wait(60)
    try:
        peak.append(server.rss_kib())
        assert_responsive(server)
    finally:
        checked.set()
    while not done.is_set():
        peak.append(server.rss_kib())
        done.wait(0.02)
    t.join()
    print(f"\n{command[:40]}...: {time.monotonic() - start:.2f} s", end="")
    if "error" in result:
        raise result["error"]
    assert_responsive(server)
    return result["answer"][1], max(peak)


def restart(server):
    """A fresh process, so the baseline RSS holds nothing from the APPENDs."""
    server.stop()
    server.start()


def test_many_partials_of_one_big_message(server):
    size, partials = 10 * MiB, 30
    c = logged_in(server)
    msg = message(1, size)
    c.ok("APPEND INBOX", msg)
    c.close()
    restart(server)
    c = logged_in(server)
    c.ok("SELECT INBOX")
    c.ok("FETCH 1 (BODY.PEEK[]<0.100>)")
    base = server.rss_kib()

    # A 500-byte command asking for 300 MiB.
    items = " ".join(f"BODY.PEEK[]<{k}.{size}>" for k in range(partials))
    nbytes, peak = fetch_under_watch(server, c, f"FETCH 1 ({items})")
    assert nbytes == sum(min(size, len(msg) - k) for k in range(partials))
    growth_mib = (peak - base) / 1024
    print(f"\n{partials} partials of {size // MiB} MiB: RSS growth {growth_mib:.1f} MiB")
    assert growth_mib < 64, f"RSS grew by {growth_mib:.0f} MiB"
    c.ok("NOOP")
    c.close()


def test_fetch_whole_mailbox(server):
    count, size = 40, 1 * MiB
    c = logged_in(server)
    c.multiappend([message(i, size) for i in range(count)])
    c.close()
    restart(server)
    c = logged_in(server)
    c.ok("SELECT INBOX")
    c.ok("FETCH 1 (BODY.PEEK[]<0.100>)")
    base = server.rss_kib()

    nbytes, peak = fetch_under_watch(server, c, "FETCH 1:* BODY.PEEK[]")
    assert nbytes >= count * size
    growth_mib = (peak - base) / 1024
    print(f"\nFETCH 1:* of {count} x {size // MiB} MiB: RSS growth {growth_mib:.1f} MiB")
    assert growth_mib < 20, f"RSS grew by {growth_mib:.0f} MiB for a {count} MiB mailbox"
    c.close()


def test_stalled_reader_holds_no_more(server):
    """A client that asks for 200 MiB and stops reading: the server waits on the socket
    instead of building the answer."""
    size, partials = 4 * MiB, 50
    c = logged_in(server)
    msg = message(7, size)
    c.ok("APPEND INBOX", msg)
    c.close()
    restart(server)
    c = logged_in(server)
    c.ok("SELECT INBOX")
    c.ok("FETCH 1 (BODY.PEEK[]<0.100>)")
    base = server.rss_kib()
    items = " ".join(f"BODY.PEEK[]<{k}.{size}>" for k in range(partials))
    c.sock.sendall(f"s1 FETCH 1 ({items})\r\n".encode())
    peak = base
    for _ in range(10):  # nothing read for 1.5 s
        time.sleep(0.15)
        peak = max(peak, server.rss_kib())
    assert_responsive(server)
    growth_mib = (peak - base) / 1024
    print(f"\nstalled reader of {partials * size // MiB} MiB: RSS growth {growth_mib:.1f} MiB")
    assert growth_mib < 32, f"RSS grew by {growth_mib:.0f} MiB with a stalled reader"
    tagged, _, nbytes = c.read_answer(b"s1")
    assert tagged.startswith(b"s1 OK"), tagged
    assert nbytes == sum(min(size, len(msg) - k) for k in range(partials))
    c.close()
