"""`mailkeep migrate` from a real Dovecot: 10,000 messages in several folders (special-use,
hierarchy, a non-ASCII name) with flags and keywords, every message compared byte for byte;
then a second run that fetches only what is new and reports what changed at the source."""

import imaplib
import re

from conftest import PASSWORD, MASTER, MASTER_PASSWORD, message, migrate

KEYWORDS = ["$Label1", "Project-X", "$Forwarded"]
# Source folder ('.'-separated, modified UTF-7) -> (how many messages, our name on the wire).
FOLDERS = {
    "INBOX": (6000, "INBOX"),
    "Sent Items": (1500, "Sent"),
    "Drafts": (100, "Drafts"),
    "Deleted": (400, "Trash"),
    "Work": (1000, "Work"),
    "Work.Projects": (800, "Work/Projects"),
    "Entw&APw-rfe": (200, "Entw&APw-rfe"),
}


def flags_for(n):
    f = []
    for every, flag in ((3, "\\Seen"), (7, "\\Flagged"), (11, "\\Answered"), (19, "\\Draft"),
                        (29, "\\Deleted"), (13, "$Label1"), (17, "Project-X"),
                        (23, "$Forwarded")):
        if n % every == 0:
            f.append(flag)
    return f


def fill(dovecot, user, folders, base=0):
    n = base
    for folder, (count, _) in folders.items():
        msgs = []
        for _ in range(count):
            msgs.append((message(n, folder), flags_for(n), 1_600_000_000 + n * 37))
            n += 1
        dovecot.write_folder(user, folder, msgs, KEYWORDS)


FETCH_RE = re.compile(rb"FLAGS \(([^)]*)\)|INTERNALDATE \"([^\"]*)\"")


def snapshot(host, port, user, folders, password=PASSWORD):
    """{wire folder: {Message-ID: (flags, internaldate, bytes)}} read with imaplib."""
    c = imaplib.IMAP4(host, port)
    c.login(user, password)
    out = {}
    for wire in folders:
        typ, _ = c.select(f'"{wire}"', readonly=True)
        assert typ == "OK", wire
        typ, data = c.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
        assert typ == "OK"
        msgs = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            head, body = item
            flags = date = None
            for m in FETCH_RE.finditer(head):
                if m.group(1) is not None:
                    flags = frozenset(f for f in m.group(1).decode().split() if f != "\\Recent")
                else:
                    date = m.group(2).decode()
            mid = re.search(rb"Message-ID: (<[^>]*>)", body).group(1).decode()
            msgs[mid] = (flags, date, body)
        out[wire] = msgs
    c.logout()
    return out


def test_dovecot_10000_messages_then_only_what_is_new(make_dovecot, make_server):
    dv = make_dovecot(("alice",))
    fill(dv, "alice", FOLDERS)
    dv.start()
    target = make_server(users=("alice",))
    src = ("--from", f"imap://127.0.0.1:{dv.port}", "--user", "alice")

    r = migrate(target, *src)
    assert r.returncode == 0, r
    assert "first run: 10000 messages new" in r.stdout, r
    assert "10000 messages" in r.stdout and "0 skipped" in r.stdout, r
    print(f"first run: 10000 messages in {r.seconds:.1f} s, peak RSS {r.maxrss_kib} KiB")

    before = snapshot("127.0.0.1", dv.port, "alice", FOLDERS)
    after = snapshot(*target.imap, "alice", [w for _, w in FOLDERS.values()])
    for folder, (count, wire) in FOLDERS.items():
        assert len(before[folder]) == count, folder
        assert after[wire] == before[folder], f"{folder} -> {wire} differs"
    # Special-use folders went to ours; the hierarchy delimiter became '/'.
    c = imaplib.IMAP4(*target.imap)
    c.login("alice", PASSWORD)
    typ, lines = c.list()
    listing = b"\n".join(lines)
    assert rb'(\HasNoChildren \Sent) "/" Sent' in listing or b"\\Sent" in listing
    assert b'"Sent Items"' not in listing and b"Deleted" not in listing, listing
    assert b"Work/Projects" in listing, listing
    c.logout()

    # Change the source: 5 new messages, 3 flag changes, 2 messages expunged.
    d = imaplib.IMAP4("127.0.0.1", dv.port)
    d.login("alice", PASSWORD)
    for i in range(5):
        d.append("INBOX", "(\\Seen $Label1)", '"05-Dec-2026 01:02:03 +0100"',
                 message(90_000 + i, "INBOX"))
    d.select("INBOX")
    d.uid("STORE", "2:4", "+FLAGS", "(\\Flagged Project-X)")
    d.select("Work")
    d.uid("STORE", "10,20", "+FLAGS", "(\\Deleted)")
    d.uid("EXPUNGE", "10,20")
    d.logout()

    r = migrate(target, *src)
    assert r.returncode == 0, r
    assert ("changes at the source: 5 new messages, 3 flag changes applied, "
            "2 messages gone at the source (kept here") in r.stdout, r
    assert "5 messages" in r.stdout, r
    now = snapshot(*target.imap, "alice", ["INBOX", "Work"])
    source = snapshot("127.0.0.1", dv.port, "alice", ["INBOX", "Work"])
    assert now["INBOX"] == source["INBOX"], "new messages and flags as at the source"
    assert len(now["Work"]) == len(source["Work"]) + 2, "gone at the source: kept here"

    # Nothing changed: nothing fetched.
    r = migrate(target, *src)
    assert r.returncode == 0, r
    assert "0 new messages, 0 flag changes applied, 0 messages gone" in r.stdout, r

    # One more expunged at the source, --delete-missing: deleted here too.
    d = imaplib.IMAP4("127.0.0.1", dv.port)
    d.login("alice", PASSWORD)
    d.select("Work")
    d.uid("STORE", "30", "+FLAGS", "(\\Deleted)")
    d.uid("EXPUNGE", "30")
    d.logout()
    r = migrate(target, *src, "--delete-missing")
    assert r.returncode == 0, r
    assert "1 messages gone at the source (1 deleted here)" in r.stdout, r
    now = snapshot(*target.imap, "alice", ["Work"])
    assert len(now["Work"]) == len(source["Work"]) + 2 - 1


SMALL = {"INBOX": (30, "INBOX"), "Sent Items": (10, "Sent"), "Work": (10, "Work")}


def test_uidvalidity_change_matches_by_message_id(make_dovecot, make_server):
    import time
    dv = make_dovecot(("alice",))
    fill(dv, "alice", SMALL)
    dv.start()
    target = make_server(users=("alice",))
    src = ("--from", f"imap://127.0.0.1:{dv.port}", "--user", "alice")
    r = migrate(target, *src)
    assert r.returncode == 0, r
    # Dovecot forgets the folder's UIDs: a new UIDVALIDITY, the same messages.
    dv.stop()
    time.sleep(1.1)
    for f in dv.maildir("alice", "Work").glob("dovecot*"):
        if f.name != "dovecot-keywords":
            f.unlink()
    dv.start()
    r = migrate(target, *src)
    assert r.returncode == 0, r
    assert "UIDVALIDITY changed (matched by Message-ID): Work" in r.stdout, r
    assert "0 new messages" in r.stdout and "10 messages matched by Message-ID" in r.stdout, r
    now = snapshot(*target.imap, "alice", ["Work"])
    assert len(now["Work"]) == 10, "no duplicates"
    # And the run after that is by UID again.
    r = migrate(target, *src)
    assert "0 new messages, 0 flag changes applied, 0 messages gone" in r.stdout, r
    assert "matched by Message-ID" not in r.stdout, r


def test_master_user_and_all_users_in_parallel(make_dovecot, make_server, tmp_path):
    dv = make_dovecot(("alice", "bob", "carol"))
    for i, u in enumerate(("alice", "bob", "carol")):
        fill(dv, u, {"INBOX": (20 + i, "INBOX"), "Work": (5, "Work")}, base=1000 * i)
    dv.start()
    # carol exists here already; bob does not (made with his source password).
    target = make_server(users=("alice", "carol"))
    users = tmp_path / "users.txt"
    users.write_text(f"# accounts\nalice {PASSWORD}\nbob {PASSWORD}\ncarol\n")
    master_pw = tmp_path / "master.pw"
    master_pw.write_text(MASTER_PASSWORD + "\n")
    r = migrate(target, "--from", f"imap://127.0.0.1:{dv.port}", "--all-users", str(users),
                "--master-user", MASTER, "--master-password-file", str(master_pw),
                "--parallel", "2", password=None)
    assert r.returncode == 0, r
    for i, u in enumerate(("alice", "bob", "carol")):
        assert f"{u}: first run: {25 + i} messages new" in r.stdout, r
        got = snapshot(*target.imap, u, ["INBOX", "Work"])
        assert (len(got["INBOX"]), len(got["Work"])) == (20 + i, 5), u

    # A single account by master login alone (no password of alice's).
    r = migrate(target, "--from", f"imap://127.0.0.1:{dv.port}", "--user", "alice",
                "--master-user", MASTER, "--master-password-file", str(master_pw),
                password=None)
    assert r.returncode == 0, r
    assert "0 new messages" in r.stdout, r

    # A wrong master password is refused, with the source's answer.
    master_pw.write_text("wrong\n")
    r = migrate(target, "--from", f"imap://127.0.0.1:{dv.port}", "--user", "alice",
                "--master-user", MASTER, "--master-password-file", str(master_pw),
                password=None)
    assert r.returncode != 0 and "login refused" in r.stdout, r
