"""SORT and THREAD on a mailbox built to hurt them (issue 10): a reply chain thousands of
messages deep, every message's References repeating the chain's ids, and subjects of thousands
of `[blob]`s (quadratic in a naive base-subject extraction). Each command is answered with the
right result in a few seconds, a fresh client is answered within 1 s while they run, and the
server's memory grows by less than a stated bound."""

import threading
import time

from conftest import LoggedIn as Client, assert_responsive

N = 1000
# Most the SORT/THREAD commands may add to the server's RSS.
RSS_BOUND_KIB = 64 * 1024
BLOBS = "[x]" * 3000


def message(i):
    refs = " ".join(f"<m{j}@example.org>" for j in range(max(1, i - 10), i))
    # The first reference is repeated: a naive loop check walks the chain for each copy.
    if i > 1:
        refs = "<m1@example.org> " * 20 + refs
    lines = [
        f"From: u{i % 7}@example.org",
        f"To: r{i % 5}@example.org",
        f"Subject: {BLOBS} Re: chain" if i % 2 else "Subject: Re: [fwd: chain]",
        "Date: Sat, 1 Jan 2000 00:00:00 +0000",
        f"Message-ID: <m{i}@example.org>",
    ]
    if refs:
        lines.append(f"References: {refs}")
    return ("\r\n".join(lines) + f"\r\n\r\nmessage {i}\r\n").encode()


def fill(c):
    """MULTIAPPEND with LITERAL+, 500 messages a command."""
    for start in range(1, N + 1, 500):
        parts = [b"APPEND INBOX"]
        for i in range(start, min(start + 500, N + 1)):
            m = message(i)
            parts.append(b" {%d+}\r\n" % len(m) + m)
        c.send(b"".join(parts))


class Watch:
    """Samples RSS and checks that a fresh client is answered while the attack runs."""

    def __init__(self, server):
        self.server, self.peak, self.worst = server, server.rss_kib(), 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, self.server.rss_kib())
            self.worst = max(self.worst, assert_responsive(self.server))
            time.sleep(0.05)

    def done(self):
        self.stop.set()
        self.thread.join()


def test_sort_and_thread_on_a_hostile_mailbox(server):
    c = Client(server)
    fill(c)
    c.cmd("SELECT INBOX")
    base = server.rss_kib()
    watch = Watch(server)
    timings = {}
    try:
        start = time.monotonic()
        r = c.cmd("THREAD REFERENCES UTF-8 ALL")
        timings["THREAD REFERENCES"] = time.monotonic() - start
        # One chain: every message answers the one before it.
        want = "* THREAD (" + " ".join(str(i) for i in range(1, N + 1)) + ")\r\n"
        assert [x.decode() for x in r] == [want]

        start = time.monotonic()
        r = c.cmd("THREAD ORDEREDSUBJECT UTF-8 ALL")
        timings["THREAD ORDEREDSUBJECT"] = time.monotonic() - start
        # Two base subjects: "chain" (odd messages and, unwrapped, the even ones' "[fwd: chain]"),
        # all one thread headed by message 1 (same dates: sequence order).
        line = r[0].decode()
        assert line.startswith("* THREAD (1 (2)(3)(4)"), line[:80]

        start = time.monotonic()
        r = c.cmd("SORT (REVERSE SUBJECT FROM) UTF-8 ALL")
        timings["SORT (REVERSE SUBJECT FROM)"] = time.monotonic() - start
        nums = [int(x) for x in r[0].split()[2:]]
        assert sorted(nums) == list(range(1, N + 1))
        # One base subject, so FROM (u0..u6) decides, then the sequence number.
        want = sorted(range(1, N + 1), key=lambda i: (i % 7, i))
        assert nums == want

        start = time.monotonic()
        r = c.cmd("UID SORT RETURN (COUNT MIN) (DATE) UTF-8 ALL")
        timings["UID SORT RETURN (COUNT MIN)"] = time.monotonic() - start
        assert r[0].split()[-4:] == [b"MIN", b"1", b"COUNT", str(N).encode()], r
    finally:
        watch.done()
    grew = watch.peak - base
    print(f"\n{N} messages: " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())
          + f"; RSS {base // 1024} -> peak {watch.peak // 1024} MiB; "
          f"slowest fresh client {watch.worst:.2f} s")
    assert grew < RSS_BOUND_KIB, f"RSS grew by {grew} KiB"
    # The debug binary; the server gives up with NO [LIMIT] after 10 s.
    assert max(timings.values()) < 10
    assert_responsive(server)
