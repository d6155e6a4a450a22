"""`mailkeep store copy --from CONFIG --to CONFIG`: an installation filled over IMAP on the
embedded store is copied to PostgreSQL, served from there, and copied back to a new embedded
store; each time every account, folder, UID, flag, INTERNALDATE and body is the same over
IMAP, and the passwords, the app password and SCRAM still log in."""

import base64
import imaplib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "auth"))

from conftest import BIN, PASSWORD, Server, store_config  # noqa: E402
from scram_client import Imap, scram_login  # noqa: E402
from twofa_helpers import enable_2fa  # noqa: E402

SQLITE = '[store]\nbackend = "sqlite"\n'
# SCRAM-SHA-1 on: its keys are copied too.
FAST = "[auth]\nfailure_delay_ms = 0\nscram_sha1 = true\n"


def mail(subject, body, extra=""):
    return (f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@example.org>\r\n{extra}\r\n{body}\r\n").encode()


def big_mail(n):
    """Random, so it packs to more than the embedded index keeps inline: a body file."""
    head = (f"From: a@example.org\r\nSubject: big{n}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    return head.encode() + base64.encodebytes(os.urandom(120_000)).replace(b"\n", b"\r\n")


def login(server, user, password):
    m = imaplib.IMAP4(*server.imap)
    m.login(user, password)
    return m


def fill(server):
    """Several accounts and folders, flags and keywords, UID gaps, a shared body, a big body,
    subscriptions, a domain, an alias, a quota, 2FA with an app password."""
    m = login(server, "alice", PASSWORD)
    for name in ("Work", "Work/Projects", "Archive", "Sent"):
        typ, data = m.create(name)
        assert typ == "OK" or b"ALREADYEXISTS" in data[0], data
    m.subscribe("Work/Projects")
    m.subscribe("Sent")
    shared = mail("shared", "the same body in two folders")
    date = imaplib.Time2Internaldate(1_600_000_000)
    m.append("INBOX", r"(\Seen $Label1 work)", date, mail("one", "first"))
    m.append("INBOX", r"(\Flagged \Answered)", None, mail("two", "second"))
    m.append("INBOX", None, None, mail("three", "third"))
    m.append("INBOX", r"(\Seen)", None, shared)
    m.append("Work/Projects", r"(\Draft Custom_kw)", None, mail("p1", "project one"))
    m.append("Work/Projects", None, None, shared)
    m.append("Archive", r"(\Seen)", None, big_mail(1))
    m.append("Archive", None, None, mail("unicode", "Gr\u00fc\u00dfe".encode().decode("latin-1")))
    # A gap in the UIDs: 2 expunged.
    m.select("INBOX")
    m.uid("STORE", "2", "+FLAGS.SILENT", r"(\Deleted)")
    m.expunge()
    m.append("INBOX", r"(\Deleted)", None, mail("four", "fourth"))
    m.logout()
    b = login(server, "bob", PASSWORD)
    b.append("INBOX", r"(\Seen)", None, mail("for-bob", "hello bob"))
    b.logout()
    for args in (("domain", "add", "example.org"),
                 ("alias", "add", "postmaster@example.org", "alice"),
                 ("quota", "set", "carol", "--storage", "10M", "--messages", "1000")):
        r = server.cli(*args)
        assert r.returncode == 0, r.stderr
    out, err, rc, secret, codes = enable_2fa(server, "bob")
    assert rc == 0, err
    assert len(codes) >= 5
    r = server.cli("app-password", "add", "bob", "Phone")
    assert r.returncode == 0, r.stderr
    app = r.stdout.strip()
    return app


def snapshot(server, logins):
    """Per account: folders (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, MAILBOXID), subscriptions,
    and per message UID, FLAGS, INTERNALDATE, SAVEDATE, EMAILID, MODSEQ and the exact bytes."""
    seen = {}
    for user, password in logins.items():
        m = login(server, user, password)
        folders = {}
        typ, lines = m.list()
        names = sorted(re.search(rb'"/" (.*)$', line).group(1).decode().strip('"')
                       for line in lines)
        typ, subs = m.lsub()
        for name in names:
            typ, st = m.status(f'"{name}"', "(UIDVALIDITY UIDNEXT MESSAGES HIGHESTMODSEQ MAILBOXID)")
            m.select(f'"{name}"', readonly=True)
            msgs = {}
            typ, data = m.uid("FETCH", "1:*", "(FLAGS INTERNALDATE SAVEDATE EMAILID MODSEQ BODY.PEEK[])")
            for item in data:
                if isinstance(item, tuple):
                    head = item[0].decode()
                    uid = int(re.search(r"UID (\d+)", head).group(1))
                    # \Recent is per session, not copied (nothing is recent after a copy).
                    flags = sorted(f for f in re.search(r"FLAGS \(([^)]*)\)", head).group(1).split()
                                   if f != "\\Recent")
                    idate = re.search(r'INTERNALDATE "([^"]+)"', head).group(1)
                    objects = re.findall(r"(SAVEDATE \S+|EMAILID \(\S+\)|MODSEQ \(\d+\))", head)
                    msgs[uid] = (flags, idate, item[1], sorted(objects))
            folders[name] = (st[0], msgs)
        seen[user] = (folders, sorted(subs))
        m.logout()
    return seen


def same(a, b):
    """Asserts two snapshots are equal, naming the first difference."""
    for user in a:
        (fa, sa), (fb, sb) = a[user], b.get(user, ({}, []))
        assert sa == sb, f"{user}: subscriptions {sa} != {sb}"
        assert sorted(fa) == sorted(fb), f"{user}: folders {sorted(fa)} != {sorted(fb)}"
        for name in fa:
            assert fa[name][0] == fb[name][0], f"{user}/{name}: {fa[name][0]} != {fb[name][0]}"
            ma, mb = fa[name][1], fb[name][1]
            assert sorted(ma) == sorted(mb), f"{user}/{name}: UIDs {sorted(ma)} != {sorted(mb)}"
            for uid in ma:
                assert ma[uid][:2] == mb[uid][:2], f"{user}/{name} {uid}: {ma[uid][:2]} != {mb[uid][:2]}"
                assert ma[uid][2] == mb[uid][2], f"{user}/{name} {uid}: bodies differ"
                assert ma[uid][3] == mb[uid][3], f"{user}/{name} {uid}: {ma[uid][3]} != {mb[uid][3]}"
                assert len(ma[uid][3]) == 3, ma[uid][3]
    assert sorted(a) == sorted(b)


def copy(src_config, dst_config, *extra):
    started = time.monotonic()
    r = subprocess.run([BIN, "store", "copy", "--from", str(src_config), "--to",
                        str(dst_config), *extra], capture_output=True, text=True, timeout=300)
    return r, time.monotonic() - started


def scram_ok(server, user, password, mechanism="SCRAM-SHA-256"):
    conn = Imap(server.imap)
    try:
        return scram_login(conn, user, password, mechanism=mechanism).ok
    finally:
        conn.close()


def check_logins(server, app):
    assert login(server, "alice", PASSWORD).logout()[0] == "BYE"
    assert scram_ok(server, "alice", PASSWORD), "SCRAM keys copied"
    assert not scram_ok(server, "alice", "wrong")
    assert scram_ok(server, "alice", PASSWORD, "SCRAM-SHA-1"), "SCRAM-SHA-1 keys copied"
    assert login(server, "bob", app).logout()[0] == "BYE", "app password copied (and its key)"
    try:
        login(server, "bob", PASSWORD)
        raise AssertionError("bob's password alone must not log in: 2FA is on")
    except imaplib.IMAP4.error:
        pass
    r = server.cli("quota", "get", "carol")
    assert r.returncode == 0 and "10" in r.stdout, r.stdout
    assert server.cli("domain", "list").stdout.split() == ["example.org"]
    assert "postmaster@example.org" in server.cli("alias", "list").stdout


def test_copy_to_postgres_and_back(pg):
    embedded = Server(extra_config=FAST + SQLITE, users=("alice", "bob", "carol"))
    nodes = []
    try:
        app = fill(embedded)
        logins = {"alice": PASSWORD, "bob": app, "carol": PASSWORD}
        before = snapshot(embedded, logins)
        embedded.stop()

        url = pg.create_database()
        pg_config = embedded.dir / "pg.toml"
        pg_config.write_text(f'data_dir = "{embedded.dir / "pgdata"}"\n[store]\n'
                             + store_config(url))
        r, took = copy(embedded.config, pg_config)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "0 mismatches" in r.stdout, r.stdout
        print(f"\nembedded -> PostgreSQL: {took:.2f} s\n{r.stdout}")
        # 9 messages, the shared one stored once.
        assert pg.sql(url, "SELECT count(*) FROM messages").strip() == "9"
        assert pg.sql(url, "SELECT count(*) FROM bodies").strip() == "8"

        # A second copy into the now non-empty target is refused without --force.
        r2, _ = copy(embedded.config, pg_config)
        assert r2.returncode != 0 and "not empty" in r2.stderr, r2.stderr
        r3, _ = copy(embedded.config, pg_config, "--force")
        assert r3.returncode == 0 and "0 mismatches" in r3.stdout, r3.stdout + r3.stderr

        node = Server(extra_config=FAST + "[store]\n" + store_config(url), users=())
        nodes.append(node)
        same(before, snapshot(node, logins))
        check_logins(node, app)
        # The copy goes on working: a new message gets the next UID.
        m = login(node, "alice", PASSWORD)
        typ, st = m.status("INBOX", "(UIDNEXT)")
        assert m.append("INBOX", None, None, mail("after", "after the copy"))[0] == "OK"
        m.logout()
        after = snapshot(node, logins)
        node.stop()

        back = Server(extra_config=FAST + SQLITE, users=())
        nodes.append(back)
        back.stop()
        r, took = copy(node.config, back.config)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "0 mismatches" in r.stdout, r.stdout
        print(f"PostgreSQL -> embedded: {took:.2f} s\n{r.stdout}")
        back.start()
        same(after, snapshot(back, logins))
        check_logins(back, app)
        back.stop()
        assert back.cli("check").returncode == 0
    finally:
        embedded.cleanup()
        for n in nodes:
            n.cleanup()


def test_copy_refuses_the_same_store(tmp_path):
    s = Server(extra_config=SQLITE, users=("alice",))
    try:
        s.stop()
        r, _ = copy(s.config, s.config)
        assert r.returncode != 0 and "same store" in r.stderr, r.stderr
    finally:
        s.cleanup()
