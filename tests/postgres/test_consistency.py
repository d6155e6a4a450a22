"""Three mailkeep nodes on one PostgreSQL database, 30 clients at once for a minute
(MAILKEEP_CONSISTENCY_SECS shortens it): 27 clients APPEND, toggle flags (UID STORE with
CONDSTORE), UID COPY, UID MOVE and UID EXPUNGE over three accounts of three mailboxes each,
spread over the nodes; 3 clients IDLE. Afterwards, per mailbox:

- every UID an APPEND/COPY/MOVE acknowledged (APPENDUID, COPYUID) is in the database unless a
  VANISHED said it was expunged or moved; none that a VANISHED named is;
- no UID acknowledged twice, no gap (every UID below UIDNEXT was acknowledged to someone: no
  failed command in this test), all below UIDNEXT, one UIDVALIDITY;
- each client's flag changes got strictly ascending MODSEQs in the order it was answered, and
  no two changes (of any clients) got the same MODSEQ; none above HIGHESTMODSEQ;
- each client's view after a NOOP (UID FETCH 1:* (FLAGS MODSEQ)) equals the database, and so
  does a view kept from the middle of the run and brought up to date by a QRESYNC SELECT;
- the IDLE clients saw every change within 1 s of the last one (their EXISTS/VANISHED count
  equals the database), and their view after DONE equals the database.
"""

import os
import random
import threading
import time
from collections import defaultdict

from rawimap import Client, compact, parse_fetch, status_code, uid_set, vanished

USERS = ("alice", "bob", "carol")
MAILBOXES = ("INBOX", "A", "B")
SYSTEM = {1: "\\Seen", 2: "\\Answered", 4: "\\Flagged", 8: "\\Deleted", 16: "\\Draft"}


def secs():
    return float(os.environ.get("MAILKEEP_CONSISTENCY_SECS", "60"))


def db_state(pg, url):
    """{(user, mailbox): {"uidvalidity", "uidnext", "highest", "msgs": {uid: (flags, modseq)}}}"""
    out = {}
    for line in pg.sql(url, "SELECT u.name, b.name, b.uidvalidity, b.uidnext, b.highest_modseq "
                            "FROM mailboxes b JOIN users u ON u.id = b.user_id").splitlines():
        user, mb, v, nxt, hi = line.split("|")
        out[(user, mb)] = {"uidvalidity": int(v), "uidnext": int(nxt), "highest": int(hi),
                           "msgs": {}}
    q = ("SELECT u.name, b.name, m.uid, m.flags, array_to_string(m.keywords, ' '), m.modseq "
         "FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id JOIN users u ON u.id = b.user_id")
    for line in pg.sql(url, q).splitlines():
        user, mb, uid, bits, kw, modseq = line.split("|")
        flags = {name for bit, name in SYSTEM.items() if int(bits) & bit} | set(kw.split())
        out[(user, mb)]["msgs"][int(uid)] = (frozenset(flags), int(modseq))
    return out


def without_recent(view):
    return {uid: (flags - {"\\Recent"}, modseq) for uid, (flags, modseq) in view.items()}


class Record:
    """What the server acknowledged, from every client."""

    def __init__(self):
        self.lock = threading.Lock()
        self.added = defaultdict(list)      # (user, mb) -> [(uidvalidity, uid, how)]
        self.removed = defaultdict(set)     # (user, mb) -> UIDs a VANISHED named
        self.modseqs = defaultdict(list)    # (user, mb) -> [(client, modseq)] of flag changes
        self.ops = defaultdict(int)
        self.stale = set()                  # (user, mb, uid) a STORE did not change
        self.errors = []

    def add(self, key, uidvalidity, uids, how):
        with self.lock:
            self.added[key].extend((uidvalidity, u, how) for u in uids)

    def gone(self, key, uids):
        with self.lock:
            self.removed[key].update(uids)

    def count(self, kind, n=1):
        with self.lock:
            self.ops[kind] += n


class Worker:
    def __init__(self, n, node, user, record):
        self.n, self.user, self.rec = n, user, record
        self.c = Client(node.imap, user)
        self.kw = f"$c{n}"
        self.rng = random.Random(n)
        self.selected = None
        self.home = MAILBOXES[n % 3]
        self.owned = {}        # (mb, uid) -> has our keyword
        self.last_modseq = {}  # mb -> modseq of our last flag change there
        self.snapshot = None   # (uidvalidity, highestmodseq, view) of home from mid-run

    def run_cmd(self, text, literal=None):
        untagged, tagged = self.c.command(text, literal)
        for line in untagged:
            assert b" EXPUNGE" not in line[:16], ("EXPUNGE under QRESYNC", line)
            gone = vanished(line)
            if gone and self.selected:
                self.rec.gone((self.user, self.selected), gone)
        assert b" OK" in tagged[:12], (self.n, text, tagged)
        return untagged, tagged

    def select(self, mb):
        if self.selected != mb:
            untagged, tagged = self.c.ok(f"SELECT {mb}")
            self.selected = mb
            return untagged, tagged
        return None

    def append(self):
        mb = self.rng.choice(MAILBOXES)
        msg = (f"From: c{self.n}@example.org\r\nTo: {self.user}@example.org\r\n"
               f"Subject: op {self.rec.ops['append']}\r\n"
               f"Message-ID: <{self.n}.{time.monotonic_ns()}@example.org>\r\n\r\n"
               f"body {self.rng.random()}\r\n").encode()
        _, tagged = self.run_cmd(f"APPEND {mb}", msg)
        v, uid = (int(x) for x in status_code(tagged, "APPENDUID"))
        self.rec.add((self.user, mb), v, [uid], "append")
        self.owned[(mb, uid)] = False
        self.rec.count("append")

    def toggle(self):
        """+FLAGS or -FLAGS of our own keyword on messages we appended: only we change it, so
        every such STORE changes something and must get a new MODSEQ."""
        mine = [(mb, u) for (mb, u) in self.owned if mb == self.selected] or list(self.owned)
        if not mine:
            return self.append()
        mb, first = self.rng.choice(mine)
        state = self.owned[(mb, first)]
        same = [u for (m, u), s in self.owned.items() if m == mb and s == state]
        uids = sorted(set([first] + self.rng.sample(same, min(len(same), 2))))
        self.select(mb)
        sign = "-" if state else "+"
        untagged, _ = self.run_cmd(f"UID STORE {compact(uids)} {sign}FLAGS ({self.kw})")
        seen = {}
        for line in untagged:
            f = parse_fetch(line)
            if f and f[0] in uids and f[0] not in seen:
                seen[f[0]] = f
        for u in uids:
            if u not in seen:  # expunged or moved away by another client
                del self.owned[(mb, u)]
        for u, (_, flags, _) in list(seen.items()):
            if (self.kw in flags) == state:
                # Not changed: expunged by another client meanwhile (the FETCH gives the
                # session's last view of it); it must be gone from the database.
                del seen[u]
                del self.owned[(mb, u)]
                with self.rec.lock:
                    self.rec.stale.add((self.user, mb, u))
            else:
                self.owned[(mb, u)] = not state
        if not seen:
            return
        modseqs = {f[2] for f in seen.values()}
        assert len(modseqs) == 1, ("one STORE, one MODSEQ", modseqs)
        modseq = modseqs.pop()
        last = self.last_modseq.get(mb, 0)
        assert modseq > last, (self.n, mb, "MODSEQ went back", last, modseq)
        self.last_modseq[mb] = modseq
        with self.rec.lock:
            self.rec.modseqs[(self.user, mb)].append((self.n, modseq))
        self.rec.count("store")

    def some_uids(self, k):
        untagged, _ = self.run_cmd("UID SEARCH ALL")
        found = []
        for line in untagged:
            if line.startswith(b"* SEARCH"):
                found = [int(x) for x in line.split()[2:]]
        return sorted(self.rng.sample(found, min(k, len(found))))

    def copy_or_move(self, cmd):
        src = self.rng.choice(MAILBOXES)
        dst = self.rng.choice([m for m in MAILBOXES if m != src])
        self.select(src)
        uids = self.some_uids(self.rng.randint(1, 3))
        if not uids:
            return self.append()
        untagged, tagged = self.run_cmd(f"UID {cmd} {compact(uids)} {dst}")
        code = status_code(tagged, "COPYUID")
        for line in untagged:
            code = code or status_code(line, "COPYUID")
        if code:
            v, from_uids, to_uids = int(code[0]), uid_set(code[1]), uid_set(code[2])
            assert len(from_uids) == len(to_uids)
            self.rec.add((self.user, dst), v, to_uids, cmd.lower())
            if cmd == "MOVE":
                for u in from_uids:
                    self.owned.pop((src, u), None)
        self.rec.count(cmd.lower())

    def expunge(self):
        self.select(self.rng.choice(MAILBOXES))
        uids = self.some_uids(self.rng.randint(1, 2))
        if not uids:
            return self.append()
        self.run_cmd(f"UID STORE {compact(uids)} +FLAGS.SILENT (\\Deleted)")
        self.run_cmd(f"UID EXPUNGE {compact(uids)}")
        self.rec.count("expunge")

    def take_snapshot(self):
        self.c.command("UNSELECT")
        self.selected = None
        untagged, _ = self.select(self.home)
        v = h = None
        for line in untagged:
            v = v or status_code(line, "UIDVALIDITY")
            h = h or status_code(line, "HIGHESTMODSEQ")
        self.snapshot = (int(v[0]), int(h[0]), without_recent(self.c.view()))

    def loop(self, deadline, snapshot_at):
        ops = [self.append] * 7 + [self.toggle] * 5 + [lambda: self.copy_or_move("COPY")] * 2 + \
            [lambda: self.copy_or_move("MOVE")] * 2 + [self.expunge] * 2
        while time.monotonic() < deadline:
            if self.snapshot is None and time.monotonic() >= snapshot_at:
                self.take_snapshot()
            self.rng.choice(ops)()


class Idler:
    def __init__(self, node, user, record):
        self.user, self.rec = user, record
        self.c = Client(node.imap, user)
        self.c.ok("SELECT INBOX")
        self.exists = 0
        self.vanished = set()
        self.events = 0
        self.stop = threading.Event()
        self.c.idle()

    def loop(self):
        while not self.stop.is_set():
            line = self.c.wait_line(0.2)
            if line is None:
                continue
            self.events += 1
            if line.endswith(b" EXISTS\r\n"):
                self.exists = int(line.split()[1])
            gone = vanished(line)
            self.vanished.update(gone)
            self.exists -= len(gone)


def test_three_nodes_thirty_clients(pg, make_node):
    url = pg.create_database()
    nodes = [make_node(url, users=USERS), make_node(url), make_node(url)]
    for u in USERS:
        c = Client(nodes[0].imap, u)
        for mb in MAILBOXES[1:]:
            c.ok(f"CREATE {mb}")
        c.close()
    rec = Record()
    workers = [Worker(i, nodes[i % 3], USERS[(i // 3) % 3], rec) for i in range(27)]
    idlers = [Idler(nodes[j], USERS[(j + 1) % 3], rec) for j in range(3)]

    length = secs()
    start = time.monotonic()
    deadline = start + length

    def work(w):
        try:
            w.loop(deadline, start + length * w.rng.uniform(0.3, 0.7))
        except Exception as e:  # noqa: BLE001 - reported below
            rec.errors.append((w.n, repr(e)))

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    threads += [threading.Thread(target=i.loop) for i in idlers]
    for t in threads:
        t.start()
    for t in threads[:len(workers)]:
        t.join()
    assert not rec.errors, rec.errors[:5]

    # IDLE: every change reaches the idlers within a second of the last write.
    db = db_state(pg, url)
    time.sleep(1.0)
    for i in idlers:
        i.stop.set()
    for t in threads[len(workers):]:
        t.join()
    for i in idlers:
        want = len(db[(i.user, "INBOX")]["msgs"])
        assert i.exists == want, (i.user, "IDLE count", i.exists, "database", want)
        i.c.done()
        assert without_recent(i.c.view()) == db[(i.user, "INBOX")]["msgs"]

    # Per mailbox: acknowledged UIDs, removals, UIDNEXT, MODSEQs.
    checks = defaultdict(int)
    for key, state in db.items():
        msgs = state["msgs"]
        added = rec.added.get(key, [])
        uids = [u for _, u, _ in added]
        assert len(uids) == len(set(uids)), (key, "UID acknowledged twice")
        assert {v for v, _, _ in added} <= {state["uidvalidity"]}, key
        assert set(uids) == set(range(1, state["uidnext"])), (key, "gap or unacknowledged UID")
        removed = rec.removed.get(key, set())
        for u in uids:
            if u in removed:
                assert u not in msgs, (key, u, "VANISHED but still there")
            else:
                assert u in msgs, (key, u, "acknowledged but lost")
            checks["uid"] += 1
        assert set(msgs) <= set(uids), (key, "message nobody was told of")
        for user, mb, u in rec.stale:
            if (user, mb) == key:
                assert u not in msgs, (key, u, "a STORE left it unchanged, yet it is there")
                checks["unchanged by STORE, expunged"] += 1
        # Each client's own order was checked as it went; here: no MODSEQ given twice.
        ms = [m for _, m in rec.modseqs.get(key, [])]
        assert len(ms) == len(set(ms)), (key, "two changes with one MODSEQ")
        assert all(m <= state["highest"] for m in ms), key
        assert all(m <= state["highest"] for _, m in msgs.values()), key
        checks["modseq"] += len(ms)
        checks["mailbox"] += 1

    # Each client's view, after NOOP and after a QRESYNC reselect from mid-run.
    resync_changes = 0
    for w in workers:
        w.run_cmd("NOOP")
        if w.selected:
            assert without_recent(w.c.view()) == db[(w.user, w.selected)]["msgs"], \
                (w.n, w.selected)
            checks["noop view"] += 1
        if w.snapshot is None:
            continue
        v, h, view = w.snapshot
        w.c.command("UNSELECT")
        untagged, _ = w.c.ok(f"SELECT {w.home} (QRESYNC ({v} {h}))")
        view = dict(view)
        for line in untagged:
            for u in vanished(line):
                view.pop(u, None)
            f = parse_fetch(line)
            if f and f[0] is not None:
                view[f[0]] = (f[1] - {"\\Recent"}, f[2])
                resync_changes += 1
        assert view == db[(w.user, w.home)]["msgs"], (w.n, w.home, "QRESYNC view")
        checks["qresync view"] += 1
        w.c.close()

    total = sum(len(s["msgs"]) for s in db.values())
    print(f"\n{len(nodes)} nodes, {len(workers)} clients + {len(idlers)} idle, "
          f"{length:.0f} s: ops {dict(rec.ops)} = {sum(rec.ops.values())} "
          f"({sum(rec.ops.values()) / length:.0f}/s); {total} messages left; "
          f"checks {dict(checks)}; QRESYNC changes applied {resync_changes}; "
          f"IDLE: {[i.events for i in idlers]} untagged lines, every change heard within 1 s "
          f"of the last write")
