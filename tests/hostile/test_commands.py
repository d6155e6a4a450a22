"""Hostile commands against the real binary (issue 7 items 5, 7, 8): sequence sets that repeat
`1:*`, LIST patterns and names built to make matching quadratic, SEARCH programs with
thousands of keys. Each attack gets a tagged answer quickly, a fresh client is answered within
1 s while it runs, and memory stays bounded where memory is the point."""

import socket
import threading
import time

from conftest import PASSWORD, assert_responsive

# Most a command may add to the server's RSS in these tests. The unfixed server used hundreds
# of MiB (2,048 messages x 16,000 copies of `1:*` = 32 M expanded indexes).
RSS_BOUND_KIB = 64 * 1024


class Client:
    """A bare IMAP client: one command at a time, answers read up to the tagged line."""

    def __init__(self, server, user="alice", timeout=30):
        self.sock = socket.create_connection(server.imap, timeout=timeout)
        self.f = self.sock.makefile("rb")
        assert self.f.readline().startswith(b"* OK")
        self.n = 0
        self.ok(f"LOGIN {user} {PASSWORD}")

    def cmd(self, line):
        """Send a command (str or bytes); return (untagged lines, tagged line)."""
        self.n += 1
        tag = f"t{self.n}".encode()
        if isinstance(line, str):
            line = line.encode()
        self.sock.sendall(tag + b" " + line + b"\r\n")
        untagged = []
        while True:
            got = self.f.readline()
            assert got, "connection closed"
            if got.startswith(tag + b" "):
                return untagged, got
            untagged.append(got)

    def ok(self, line):
        untagged, tagged = self.cmd(line)
        assert b" OK " in tagged, tagged
        return untagged

    def close(self):
        self.sock.close()


def timed(fn):
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def during(server, attack):
    """Run `attack` in a thread; meanwhile a fresh client must be answered within 1 s, at
    least once and until the attack ends. Returns the attack's result and its duration."""
    box = {}

    def run():
        try:
            box["result"], box["took"] = timed(attack)
        except BaseException as e:  # re-raised below
            box["error"] = e

    t = threading.Thread(target=run)
    t.start()
    checks = 0
    while t.is_alive() or checks == 0:
        assert_responsive(server)
        checks += 1
        time.sleep(0.05)
    t.join()
    if "error" in box:
        raise box["error"]
    assert_responsive(server)
    return box["result"], box["took"]


def fill_inbox(c, count):
    """INBOX with `count` (a power of two) small messages: one APPEND, then COPY doubles."""
    msg = b"Subject: x\r\n\r\nbody"
    c.ok(b"APPEND INBOX {%d+}\r\n" % len(msg) + msg)
    c.ok("SELECT INBOX")
    have = 1
    while have < count:
        c.ok("COPY 1:* INBOX")
        c.ok("NOOP")
        have *= 2


# Item 5: sequence sets are merged before they are expanded.


def test_repeated_whole_range_sets(server):
    c = Client(server)
    fill_inbox(c, 2048)
    set_ = ",".join(["1:*"] * 16000)
    assert len(set_) < 64000
    rss0 = server.rss_kib()
    untagged, took = during(server, lambda: c.ok(f"FETCH {set_} (UID)"))
    assert len([u for u in untagged if b" FETCH " in u]) == 2048
    assert took < 5, f"FETCH took {took:.1f} s"
    for line in [
        f"UID FETCH {set_} (FLAGS)",
        f"STORE {set_} +FLAGS.SILENT (\\Seen)",
        f"UID SEARCH UID {set_}",
        f"SEARCH {set_}",
    ]:
        _, took = during(server, lambda line=line: c.ok(line))
        assert took < 5, f"{line[:20]} took {took:.1f} s"
    c.ok("CREATE Other")
    _, took = during(server, lambda: c.ok(f"COPY {set_} Other"))
    assert took < 10, f"COPY took {took:.1f} s"
    growth = server.rss_kib() - rss0
    assert growth < RSS_BOUND_KIB, f"RSS grew {growth} KiB"
    c.ok(f"STORE {set_} +FLAGS.SILENT (\\Deleted)")
    untagged, took = during(server, lambda: c.ok(f"UID EXPUNGE {set_}"))
    assert len(untagged) == 2048
    assert took < 10, f"UID EXPUNGE took {took:.1f} s"
    c.close()


# Item 7: LIST patterns are capped and matched in one pass; names are checked; limits.


def test_long_subscription_and_pattern_refused(server):
    c = Client(server)
    long_name = "a" * 70000
    _, tagged = c.cmd(b"SUBSCRIBE {70000+}\r\n" + long_name.encode())
    assert tagged.split()[1:3] == [b"NO", b"[LIMIT]"], tagged
    pattern = b"*" * (96 * 1024)
    (_, tagged), took = timed(
        lambda: c.cmd(b"LIST (SUBSCRIBED) \"\" {%d+}\r\n" % len(pattern) + pattern))
    assert tagged.split()[1:3] == [b"NO", b"[LIMIT]"], tagged
    assert took < 1, f"LIST took {took:.1f} s"
    _, tagged = c.cmd(b"LSUB \"\" {%d+}\r\n" % len(pattern) + pattern)
    assert tagged.split()[1:3] == [b"NO", b"[LIMIT]"], tagged
    # RENAME may not make a child's name longer than CREATE allows.
    c.ok("CREATE p/" + "c" * 990)
    _, tagged = c.cmd("RENAME p " + "q" * 20)
    assert tagged.split()[1:3] == [b"NO", b"[LIMIT]"], tagged
    assert_responsive(server)
    c.close()


def test_worst_case_patterns_on_longest_names(server):
    """Subscriptions of the longest allowed names and the longest allowed patterns, built to
    defeat a backtracking matcher (`*%*%...` against `aaaa...`)."""
    c = Client(server)
    for i in range(100):
        name = f"n{i:03}/" + "a" * 990
        c.ok(b"SUBSCRIBE {%d+}\r\n" % len(name) + name.encode())
    pattern = ("%a*" * 333 + "b").encode()
    list_cmd = b"LIST (SUBSCRIBED) \"\" {%d+}\r\n" % len(pattern) + pattern
    rss0 = server.rss_kib()
    for _ in range(3):
        (untagged, tagged), took = during(server, lambda: c.cmd(list_cmd))
        assert b" OK " in tagged, tagged
        assert untagged == []
        assert took < 2, f"LIST took {took:.1f} s"
    (untagged, tagged), took = during(server, lambda: c.cmd(b"LSUB \"\" {%d+}\r\n" % len(
        pattern) + pattern))
    assert b" OK " in tagged and untagged == [] and took < 2, (tagged, took)
    # A pattern that matches them all still works.
    untagged = c.ok("LIST (SUBSCRIBED) \"\" \"n%/*a\"")
    assert len(untagged) == 100
    assert server.rss_kib() - rss0 < RSS_BOUND_KIB
    c.close()


def test_mailbox_and_subscription_limits(make_server):
    server = make_server(extra_config="[limits]\nmax_mailboxes = 12\nmax_subscriptions = 8\n")
    c = Client(server)
    # The first login made INBOX and 5 special-use mailboxes, all subscribed.
    c.ok("CREATE a")
    # a/b/c needs two more: 6 + 1 + 2 = 9.
    c.ok("CREATE a/b/c")
    c.ok("CREATE d")
    c.ok("CREATE e")
    c.ok("CREATE f")
    _, tagged = c.cmd("CREATE g")
    assert tagged.split()[1:3] == [b"NO", b"[LIMIT]"], tagged
    # RENAME that would create a parent past the limit.
    _, tagged = c.cmd("RENAME f x/f")
    assert tagged.split()[1:3] == [b"NO", b"[LIMIT]"], tagged
    c.ok("RENAME f g")
    c.ok("SUBSCRIBE a")
    c.ok("SUBSCRIBE a/b")
    _, tagged = c.cmd("SUBSCRIBE d")
    assert tagged.split()[1:3] == [b"NO", b"[LIMIT]"], tagged
    # Subscribing again to a subscribed name is not a new one.
    c.ok("SUBSCRIBE a")
    c.ok("UNSUBSCRIBE a")
    c.ok("SUBSCRIBE d")
    c.close()


# Item 8: SEARCH work is bounded.


def test_search_with_thousands_of_keys(server):
    c = Client(server)
    fill_inbox(c, 4)
    for line in [" ".join(["TEXT x"] * 9000), " ".join(["1:*"] * 8000),
                 "(" + " ".join(["ALL"] * 1500) + ")"]:
        rss0 = server.rss_kib()
        (_, tagged), took = during(server, lambda line=line: c.cmd("SEARCH " + line))
        assert tagged.split()[1:3] == [b"NO", b"[LIMIT]"], tagged
        assert took < 1, f"SEARCH took {took:.1f} s"
        assert server.rss_kib() - rss0 < RSS_BOUND_KIB
    # Up to the limit it is answered, and quickly.
    (_, tagged), took = during(server, lambda: c.cmd(
        "SEARCH " + " ".join(["1:*"] * 500 + [f"TEXT x{i}" for i in range(10)] + ["TEXT x"] * 400)))
    assert b" OK " in tagged, tagged
    assert took < 5, f"SEARCH took {took:.1f} s"
    c.close()


def test_search_many_keys_on_a_larger_mailbox(server):
    c = Client(server)
    fill_inbox(c, 2048)
    rss0 = server.rss_kib()
    # 900 keys: NOT and UID count one each.
    keys = " ".join(f"NOT UID {i}" for i in range(1, 451))
    (_, tagged), took = during(server, lambda: c.cmd("SEARCH " + keys))
    assert b" OK " in tagged, tagged
    assert took < 5, f"SEARCH took {took:.1f} s"
    assert server.rss_kib() - rss0 < RSS_BOUND_KIB
    c.close()
