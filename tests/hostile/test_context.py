"""RFC 5267 update contexts and RFC 7377 ESEARCH used to hurt the server (issue 10): a client
asks for a hundred `SORT RETURN (UPDATE)` contexts on a mailbox of 1,000 messages (only
`[limits] max_search_contexts` are kept, the rest get `* NO [NOUPDATE]`), then another session
changes every message's flags and delivers: the NOOP that sends the updates stays quick.
ESEARCH IN (personal) over 300 mailboxes answers each one. A fresh client is answered within
1 s throughout, and the server's memory grows by less than a stated bound."""

import threading
import time

from conftest import LoggedIn as Client, assert_responsive

N = 1000
RSS_BOUND_KIB = 64 * 1024


def responsive_while(server, work):
    """Run `work` in a thread, checking a fresh client is answered within 1 s meanwhile."""
    result = {}

    def run():
        result["value"] = work()

    t = threading.Thread(target=run)
    t.start()
    while t.is_alive():
        assert_responsive(server)
        time.sleep(0.2)
    t.join()
    return result["value"]


def test_many_update_contexts(server):
    a = Client(server)
    for i in range(N):
        a.append("INBOX", f"Subject: s{i % 97}\r\nFrom: u{i % 13}@x.org\r\n\r\nbody {i}\r\n".encode())
    a.cmd("SELECT INBOX")
    rss0 = server.rss_kib()

    def ask():
        refused = 0
        for k in range(100):
            out = a.cmd("UID SORT RETURN (UPDATE COUNT) (REVERSE SUBJECT FROM) UTF-8 ALL")
            refused += sum(b"[NOUPDATE " in ln for ln in out)
        return refused

    assert responsive_while(server, ask) == 90

    b = Client(server)
    b.cmd("SELECT INBOX")
    b.cmd("UID STORE 1:* +FLAGS.SILENT (\\Flagged)")
    b.append("INBOX", b"Subject: a\r\nFrom: z@x.org\r\n\r\nnew\r\n")
    start = time.monotonic()
    out = responsive_while(server, lambda: a.cmd("NOOP"))
    took = time.monotonic() - start
    adds = [ln for ln in out if b" ADDTO (" in ln]
    assert len(adds) == 10, out[-12:]
    print(f"NOOP with 10 SORT contexts after {N} flag changes and a delivery: {took:.2f} s")
    assert took < 10, took
    grown = server.rss_kib() - rss0
    print(f"RSS growth: {grown} KiB")
    assert grown < RSS_BOUND_KIB, grown
    assert_responsive(server)


def test_multisearch_many_mailboxes(server):
    c = Client(server)
    for i in range(300):
        c.cmd(f"CREATE box{i}")
        c.append(f"box{i}", f"Subject: n{i}\r\n\r\nneedle {i}\r\n".encode())
    rss0 = server.rss_kib()
    start = time.monotonic()
    out = responsive_while(
        server, lambda: c.cmd("ESEARCH IN (personal) RETURN (COUNT) BODY needle")
    )
    took = time.monotonic() - start
    assert sum(b"UID COUNT 1" in ln for ln in out) == 300, out[:3]
    print(f"ESEARCH IN (personal) over 300 mailboxes: {took:.2f} s")
    grown = server.rss_kib() - rss0
    print(f"RSS growth: {grown} KiB")
    assert grown < RSS_BOUND_KIB, grown
    # Names that cannot be decoded or do not exist name nothing; the command still succeeds.
    assert c.cmd('ESEARCH IN (mailboxes ("&Jjo" nothere) subtree "x/y") ALL') == []
    assert_responsive(server)
