"""`mailkeep import maildir`: Maildir++ as Dovecot writes it (by doveadm itself when it can run
here), a hand-written Dovecot-shaped tree with uidlist version 1, the fs layout, and skips."""

import os
import shutil
import time

import pytest

from helpers import (account, doveadm, import_cli, login, message, tmpdir, write_maildir)


def test_maildir_written_by_dovecot(server):
    work = tmpdir()
    try:
        dv = doveadm(work)
        if dv is None:
            pytest.skip("doveadm cannot run here")
        dv("mailbox", "create", "-s", "Sent", "Lists/rust", "Entwürfe")
        for i in range(3):
            dv("save", input=message(i))
        for i in range(3, 5):
            dv("save", "-m", "Lists/rust", input=message(i))
        dv("save", "-m", "Entwürfe", input=message(9))
        dv("flags", "add", "\\Seen $Junk", "mailbox", "INBOX", "uid", "1,3")
        dv("flags", "add", "\\Flagged work", "mailbox", "INBOX", "uid", "3")
        dv("flags", "add", "\\Answered \\Draft", "mailbox", "Lists/rust", "uid", "2")
        # Expunging UID 2 leaves a gap in INBOX's UIDs, which must stay.
        dv("expunge", "mailbox", "INBOX", "uid", "2")
        maildir = dv.maildir
        uidlist = (maildir / "dovecot-uidlist").read_text().split("\n")[0]
        uidvalidity = int(uidlist.split()[1][1:])
        mtimes = {}
        for sub in ("cur", "new"):
            for p in (maildir / sub).iterdir():
                mtimes[p.read_bytes().replace(b"\n", b"\r\n")] = int(p.stat().st_mtime)

        out = import_cli(server, "maildir", str(maildir), "--user", "alice")
        assert "done: 4 folders, 5 messages" in out, out
        got = account(server, "alice")
        assert sorted(got) == ["Entw&APw-rfe", "INBOX", "Lists/rust", "Sent"]  # modified UTF-7
        v, inbox = got["INBOX"]
        assert v == uidvalidity, "UIDVALIDITY from dovecot-uidlist"
        assert sorted(inbox) == [1, 3], "UIDs from dovecot-uidlist, gap kept"
        assert inbox[1][0] == ("$Junk", "\\Seen")
        assert inbox[3][0] == ("$Junk", "\\Flagged", "\\Seen", "work")
        assert inbox[1][2] == message(0).replace(b"\n", b"\r\n")
        assert inbox[3][2] == message(2).replace(b"\n", b"\r\n")
        for uid, (_, date, data) in inbox.items():
            assert date == mtimes[data], "INTERNALDATE is the file's mtime"
        _, lists = got["Lists/rust"]
        assert sorted(lists) == [1, 2]
        assert lists[2][0] == ("\\Answered", "\\Draft")
        assert lists[1][0] == ()
        assert len(got["Entw&APw-rfe"][1]) == 1

        # New mail after the import gets the next UIDs.
        c = login(server, "alice")
        c.append("INBOX", None, None, message(99).replace(b"\n", b"\r\n"))
        c.select("INBOX")
        typ, data = c.uid("SEARCH", "ALL")
        assert data[0].split() == [b"1", b"3", b"4"]
        c.logout()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def dovecot_shaped(root):
    """A Maildir++ tree written the way Dovecot and Courier leave one: uidlist version 1 in
    INBOX, version 3 in .Lists.rust, keywords, a file in new/, a file the uidlist lacks."""
    inbox = root
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    files = {
        "cur/1600000001.M1P1.host,S=10:2,RSb": message(1),
        "cur/1600000002.M2P1.host:2,FTa": message(2),
        "new/1600000003.M3P1.host": message(3),
        "cur/1600000004.M4P1.host:2,S": message(4),  # not in the uidlist
    }
    for name, data in files.items():
        p = inbox / name
        p.write_bytes(data)
        t = int(name.split("/")[1].split(".")[0])
        os.utime(p, (t, t))
    (inbox / "dovecot-uidlist").write_text(
        "1 1500000000 20\n"
        "5 1600000001.M1P1.host,S=10\n"
        "7 1600000002.M2P1.host\n"
        "11 1600000003.M3P1.host\n")
    (inbox / "dovecot-keywords").write_text("0 $Junk\n1 $Forwarded\n")
    write_maildir(root, 3, folder=".Lists.rust", start_uid=40, uidvalidity=1400000000)
    (root / "subscriptions").write_text("V\t2\n\nLists\trust\n")
    return files


def test_maildir_plus_plus_written_by_hand(server):
    work = tmpdir()
    try:
        files = dovecot_shaped(work / "Maildir")
        out = import_cli(server, "maildir", str(work / "Maildir"), "--user", "alice")
        assert "done: 2 folders, 7 messages" in out, out
        got = account(server, "alice")
        v, inbox = got["INBOX"]
        assert v == 1500000000
        # The uidlist's UIDs; the file it lacks after its next UID (20).
        assert sorted(inbox) == [5, 7, 11, 20]
        assert inbox[5][0] == ("$Forwarded", "\\Answered", "\\Seen")
        assert inbox[7][0] == ("$Junk", "\\Deleted", "\\Flagged")
        assert inbox[11][0] == ()
        assert inbox[20][0] == ("\\Seen",)
        assert inbox[7][1] == 1600000002
        assert inbox[20][2] == files["cur/1600000004.M4P1.host:2,S"].replace(b"\n", b"\r\n")
        v, lists = got["Lists/rust"]
        assert v == 1400000000 and sorted(lists) == [40, 41, 42]
        c = login(server, "alice")
        typ, data = c.lsub('""', "*")
        assert b"Lists/rust" in b"".join(data)
        c.logout()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_import_into_mailbox_with_mail_appends_after_it(server):
    work = tmpdir()
    try:
        c = login(server, "alice")
        c.append("INBOX", None, None, b"Subject: before\r\n\r\nx\r\n")
        c.logout()
        before = account(server, "alice")["INBOX"][0]
        write_maildir(work / "md", 3, start_uid=100, uidvalidity=42)
        import_cli(server, "maildir", str(work / "md"), "--user", "alice")
        v, inbox = account(server, "alice")["INBOX"]
        assert v == before, "a mailbox with mail keeps its UIDVALIDITY"
        assert sorted(inbox) == [1, 2, 3, 4], "imported mail goes after what it held"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_fs_layout(server):
    work = tmpdir()
    try:
        root = work / "Maildir"
        write_maildir(root, 2)
        write_maildir(root, 1, folder="Sent")
        write_maildir(root, 2, folder="Lists/rust")
        import_cli(server, "maildir", str(root), "--user", "alice", "--layout", "fs")
        got = account(server, "alice", body=False)
        assert {f: len(m[1]) for f, m in got.items()} == {"INBOX": 2, "Lists/rust": 2, "Sent": 1}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_skips_are_counted_and_named(make_server):
    server = make_server(extra_config="[limits]\nmax_message_size = 2000\n")
    work = tmpdir()
    try:
        root = write_maildir(work / "md", 3)
        (root / "cur" / "1700000100.M9P1.host:2,").write_bytes(b"")
        (root / "cur" / "1700000101.M9P2.host:2,S").write_bytes(message(5, size=5000))
        # Malformed (no header, binary junk) is imported as it is.
        (root / "cur" / "1700000102.M9P3.host:2,S").write_bytes(b"\x00\xff garbage\n\n\xfe")
        out = import_cli(server, "maildir", str(root), "--user", "alice")
        assert "done: 1 folders, 4 messages" in out, out
        assert "2 skipped" in out, out
        assert "skipped (empty file): 1" in out and "1700000100.M9P1.host" in out, out
        assert "skipped (bigger than [limits] max_message_size): 1" in out, out
        assert "1700000101.M9P2.host" in out, out
        inbox = account(server, "alice")["INBOX"][1]
        assert any(b"garbage" in m[2] for m in inbox.values())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_import_of_unknown_user_fails(server):
    work = tmpdir()
    try:
        write_maildir(work / "md", 1)
        r = server.cli("import", "maildir", str(work / "md"), "--user", "nobody")
        assert r.returncode != 0 and "no such account" in r.stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)
