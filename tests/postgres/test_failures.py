"""Failures of a multi-node installation on PostgreSQL:

- PostgreSQL restarted (fast, then immediate) while clients APPEND on two nodes: a command that
  meets the outage is answered `NO [UNAVAILABLE]` or OK after a short wait, never BYE or a
  dropped connection; the nodes serve again by themselves; every APPEND that got OK is in the
  database; IDLE hears mail from the other node again within 1 s.
- A node killed with kill -9 under load: the other nodes' clients see no error; the killed
  node's clients reconnect to another node and a QRESYNC SELECT brings their view (kept from
  before) up to the database's, with all acknowledged mail.
- The LISTEN connection of a node lost (pg_terminate_backend) while it cannot connect again:
  an APPEND made meanwhile on another node still reaches the node's IDLE session once it
  listens again (re-sync from the last modseq seen).
"""

import os
import threading
import time

from conftest import PASSWORD
from rawimap import Client, Closed, compact, parse_fetch, status_code, vanished

MSG = "From: load@example.org\r\nSubject: load {n}\r\nMessage-ID: <{n}@load>\r\n\r\nbody {n}\r\n"


def db_uids(pg, url, user, mailbox="INBOX"):
    rows = pg.sql(url, "SELECT m.uid FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
                       f"JOIN users u ON u.id = b.user_id WHERE u.name = '{user}' "
                       f"AND b.name = '{mailbox}'")
    return {int(x) for x in rows.split()}


def db_view(pg, url, user, mailbox="INBOX"):
    q = ("SELECT m.uid, m.flags, array_to_string(m.keywords, ' '), m.modseq FROM messages m "
         "JOIN mailboxes b ON b.id = m.mailbox_id JOIN users u ON u.id = b.user_id "
         f"WHERE u.name = '{user}' AND b.name = '{mailbox}'")
    names = {1: "\\Seen", 2: "\\Answered", 4: "\\Flagged", 8: "\\Deleted", 16: "\\Draft"}
    out = {}
    for line in pg.sql(url, q).splitlines():
        uid, bits, kw, modseq = line.split("|")
        flags = {n for b, n in names.items() if int(bits) & b} | set(kw.split())
        out[int(uid)] = (frozenset(flags), int(modseq))
    return out


def assert_no_panic(nodes):
    for s in nodes:
        log = (s.dir / "server.log").read_text(errors="replace")
        assert "panicked" not in log, log[-2000:]


class Appender:
    """APPENDs to INBOX in a loop; records what each answer was."""

    def __init__(self, node, user, n):
        self.node, self.user, self.n = node, user, n
        self.c = Client(node.imap, user)
        self.acked = []          # UIDs
        self.unavailable = 0
        self.other = []          # anything but OK and NO [UNAVAILABLE]
        self.ok_times = []
        self.stop = threading.Event()
        self.k = 0

    def one(self):
        self.k += 1
        untagged, tagged = self.c.command(
            "APPEND INBOX", MSG.format(n=f"{self.n}.{self.k}").encode())
        if b" OK " in tagged[:12]:
            self.acked.append(int(status_code(tagged, "APPENDUID")[1]))
            self.ok_times.append(time.monotonic())
        elif b" NO [UNAVAILABLE]" in tagged:
            self.unavailable += 1
            time.sleep(0.05)
        else:
            self.other.append(tagged)

    def loop(self):
        try:
            while not self.stop.is_set():
                self.one()
        except Closed as e:
            self.other.append(f"connection lost: {e}")


def first_ok_after(appenders, t):
    return min((x for a in appenders for x in a.ok_times if x > t), default=None)


def wait_exists(idler, within):
    start = time.monotonic()
    while True:
        left = within - (time.monotonic() - start)
        line = idler.wait_line(left) if left > 0 else None
        if line is None:
            return None
        if line.endswith(b" EXISTS\r\n"):
            return time.monotonic() - start


def test_postgres_restart_under_load(pg, make_node):
    url = pg.create_database()
    a = make_node(url, users=("alice", "bob"))
    b = make_node(url)
    idler = Client(a.imap, "bob")
    idler.ok("SELECT INBOX")
    idler.idle()
    poster = Client(b.imap, "bob")
    appenders = [Appender(node, "alice", i) for i, node in enumerate([a, b] * 3)]
    threads = [threading.Thread(target=x.loop) for x in appenders]
    for t in threads:
        t.start()
    figures = []
    try:
        for mode in ("fast", "immediate"):
            time.sleep(1.5)
            took = pg.restart(mode)
            back = time.monotonic()
            # Both nodes serve again, without being restarted.
            for node in (a, b):
                mine = [x for x in appenders if x.node is node]
                deadline = back + 10
                while first_ok_after(mine, back) is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert first_ok_after(mine, back) is not None, f"{mode}: node does not serve"
            recovered = first_ok_after(appenders, back) - back
            # IDLE on node A hears an APPEND on node B: the LISTEN connection is back.
            time.sleep(1.0)
            poster.ok("APPEND INBOX", MSG.format(n=f"idle.{mode}").encode())
            lat = wait_exists(idler, 1.0)
            assert lat is not None, f"{mode}: IDLE did not hear the APPEND within 1 s"
            figures.append((mode, took, recovered, lat))
    finally:
        for x in appenders:
            x.stop.set()
        for t in threads:
            t.join()
    others = [o for x in appenders for o in x.other]
    assert not others, others[:5]
    acked = [u for x in appenders for u in x.acked]
    assert len(acked) == len(set(acked)), "UID acknowledged twice"
    missing = set(acked) - db_uids(pg, url, "alice")
    assert not missing, f"acknowledged but lost: {sorted(missing)[:20]}"
    idler.done()
    assert_no_panic([a, b])
    print(f"\n{len(acked)} APPENDs acknowledged, all in the database; "
          f"{sum(x.unavailable for x in appenders)} answered NO [UNAVAILABLE]; " + "; ".join(
              f"restart -m {m}: {t:.2f} s, first OK {r * 1000:.0f} ms after, "
              f"IDLE across nodes {lat * 1000:.0f} ms" for m, t, r, lat in figures))


def test_postgres_down_for_longer(pg, make_node):
    """Down for longer than a command waits (3 s): the command is answered NO [UNAVAILABLE]
    (LOGIN too), the connection stays, and the same session works once PostgreSQL is back."""
    url = pg.create_database()
    a = make_node(url, users=("alice",))
    c = Client(a.imap, "alice")
    c.ok("SELECT INBOX")
    c.ok("APPEND INBOX", MSG.format(n="before").encode())
    pg.halt()
    try:
        start = time.monotonic()
        _, tagged = c.command("APPEND INBOX", MSG.format(n="during").encode())
        waited = time.monotonic() - start
        assert tagged.startswith(b"t") and b" NO [UNAVAILABLE] " in tagged, tagged
        # The command waits up to 3 s for the database, and not again for the sync after it.
        assert 2.5 < waited < 4.5, waited
        # Once it has been gone that long, commands are answered at once.
        start = time.monotonic()
        _, tagged = c.command("UID FETCH 1:* (FLAGS)")
        assert b" NO [UNAVAILABLE] " in tagged or b" OK " in tagged, tagged
        at_once = time.monotonic() - start
        assert at_once < 1.0, at_once
        fresh = Client.__new__(Client)
        fresh.s = __import__("socket").create_connection(a.imap, timeout=30)
        fresh.buf, fresh.n = b"", 0
        assert fresh.readline().startswith(b"* OK")
        _, tagged = fresh.command(f"LOGIN alice {PASSWORD}")
        assert b" NO [UNAVAILABLE] " in tagged, tagged
    finally:
        pg.resume()
    back = time.monotonic()
    _, tagged = c.ok("APPEND INBOX", MSG.format(n="after").encode())
    recovered = time.monotonic() - back
    assert len(c.view()) == 2
    _, tagged = fresh.ok(f"LOGIN alice {PASSWORD}")
    assert db_uids(pg, url, "alice") == {1, 2}
    assert_no_panic([a])
    print(f"\nPostgreSQL down: APPEND answered NO [UNAVAILABLE] after {waited:.1f} s, the "
          f"next command after {at_once * 1000:.0f} ms, the connection kept; after the start the same session's APPEND took "
          f"{recovered * 1000:.0f} ms")


class Syncer:
    """APPENDs and toggles a keyword on INBOX; keeps its view for a QRESYNC later."""

    def __init__(self, node, n):
        self.node, self.n = node, n
        self.c = Client(node.imap, "alice")
        _, self.uidvalidity, self.highest = self.select(None)
        self.view = {u: v for u, v in self.c.view().items()}
        self.acked = []
        self.errors = []
        self.lost_at = None
        self.stop = threading.Event()
        self.k = 0

    def select(self, qresync):
        arg = f" (QRESYNC ({qresync[0]} {qresync[1]}))" if qresync else ""
        untagged, _ = self.c.ok(f"SELECT INBOX{arg}")
        v = h = None
        for line in untagged:
            v = v or status_code(line, "UIDVALIDITY")
            h = h or status_code(line, "HIGHESTMODSEQ")
        return untagged, int(v[0]), int(h[0])

    def apply(self, untagged):
        for line in untagged:
            for u in vanished(line):
                self.view.pop(u, None)
            f = parse_fetch(line)
            if f and f[0] is not None and f[1] is not None:
                self.view[f[0]] = (f[1] - {"\\Recent"}, f[2])

    def loop(self):
        try:
            while not self.stop.is_set():
                self.k += 1
                _, tagged = self.c.ok("APPEND INBOX", MSG.format(n=f"s{self.n}.{self.k}").encode())
                self.acked.append(int(status_code(tagged, "APPENDUID")[1]))
                mine = self.acked[-3:]
                self.c.ok(f"UID STORE {compact(mine)} +FLAGS ($s{self.n})")
        except (Closed, AssertionError) as e:
            self.errors.append(repr(e))
            self.lost_at = time.monotonic()


def test_kill9_of_one_node(pg, make_node):
    url = pg.create_database()
    nodes = [make_node(url, users=("alice",)), make_node(url), make_node(url)]
    syncers = [Syncer(nodes[i % 3], i) for i in range(6)]
    threads = [threading.Thread(target=s.loop) for s in syncers]
    for t in threads:
        t.start()
    time.sleep(2.0)
    killed_at = time.monotonic()
    nodes[2].kill9()
    time.sleep(2.0)
    for s in syncers:
        s.stop.set()
    for t in threads:
        t.join()
    survivors = [s for s in syncers if s.node is not nodes[2]]
    victims = [s for s in syncers if s.node is nodes[2]]
    assert all(not s.errors for s in survivors), [s.errors for s in survivors]
    assert all(s.errors for s in victims), "the killed node's clients noticed nothing"
    db = db_view(pg, url, "alice")
    acked = [u for s in syncers for u in s.acked]
    assert len(acked) == len(set(acked))
    assert set(acked) <= set(db), "acknowledged mail lost"
    resync = []
    for i, s in enumerate(victims):
        # Reconnect to another node; bring the view from before the kill up to date.
        s.c.close()
        start = time.monotonic()
        s.c = Client(nodes[i % 2].imap, "alice")
        untagged, _, _ = s.select((s.uidvalidity, s.highest))
        s.apply(untagged)
        resync.append(time.monotonic() - start)
        view = {u: (f - {"\\Recent"}, m) for u, (f, m) in s.view.items()}
        assert view == db, "QRESYNC view differs from the database"
        assert set(s.acked) <= set(view)
    for s in survivors:
        untagged, _ = s.c.ok("NOOP")
        assert {u: (f - {"\\Recent"}, m) for u, (f, m) in s.c.view().items()} == db
    assert_no_panic(nodes[:2])
    noticed = max(s.lost_at for s in victims) - killed_at
    print(f"\n{len(acked)} APPENDs acknowledged on 3 nodes; node 3 killed, its clients saw the "
          f"connection drop within {noticed * 1000:.0f} ms; survivors' errors: 0; "
          f"{len(victims)} clients resynced on another node in {max(resync) * 1000:.0f} ms "
          f"(QRESYNC, {len(db)} messages)")


def test_lost_listen_connection_misses_nothing(pg, make_node):
    url = pg.create_database()
    a = make_node(url, users=("alice",))
    b = make_node(url)
    poster = Client(b.imap, "alice")
    poster.ok("APPEND INBOX", MSG.format(n="warm").encode())  # b's pool holds a connection
    idler = Client(a.imap, "alice")
    idler.ok("SELECT INBOX")
    idler.idle()
    # Node A's listener: the first LISTEN connection made (A started before B).
    pid = pg.sql(url, "SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN mailkeep' "
                      "ORDER BY backend_start LIMIT 1").strip()
    assert pid
    sock = pg.dir / f".s.PGSQL.{pg.port}"
    hidden = pg.dir / "hidden-socket"
    # No new connections for a while (the socket file moved away): A cannot listen again
    # before the APPEND below is committed and its NOTIFY sent.
    os.rename(sock, hidden)
    try:
        pg_terminate(pg, url, pid, hidden)
        time.sleep(0.3)
        poster.ok("APPEND INBOX", MSG.format(n="meanwhile").encode())
        assert idler.wait_line(0.5) is None, "heard although not listening?"
    finally:
        os.rename(hidden, sock)
    back = time.monotonic()
    lat = wait_exists(idler, 3.0)
    assert lat is not None, "the APPEND made while A was not listening was missed"
    idler.done()
    assert len(idler.view()) == 2
    assert_no_panic([a, b])
    print(f"\nLISTEN connection lost: the APPEND made meanwhile reached IDLE "
          f"{(time.monotonic() - back) * 1000:.0f} ms after connections were possible again")


def pg_terminate(pg, url, pid, socket_dir_file):
    """pg_terminate_backend(pid) over the moved socket (psql takes the socket's directory, so
    link the moved file under the usual name in a directory of its own)."""
    d = pg.dir / "side"
    d.mkdir(exist_ok=True)
    if pg.root:
        import shutil
        shutil.chown(d, "postgres", "postgres")
    link = d / f".s.PGSQL.{pg.port}"
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(socket_dir_file)
    db = url.rsplit("/", 1)[1]
    out = pg.run("psql", "-h", str(d), "-p", str(pg.port), "-U", "postgres", "-d", db, "-At",
                 "-c", f"SELECT pg_terminate_backend({pid})")
    assert out.strip() == "t", out
