"""`mailkeep import mbox`: Thunderbird's profile layout (X-Mozilla-Status, `.sbd` children,
`.msf` files beside), Apple Mail's export (`Name.mbox/mbox`), mboxrd/mboxo quoting, skips."""

import calendar
import shutil

from helpers import account, import_cli, tmpdir


def msg(i, extra=""):
    return (f"From: s{i}@example.org\nSubject: m{i}\n{extra}\nbody {i}\n").encode()


def test_thunderbird_profile(server):
    work = tmpdir()
    try:
        mail = work / "Local Folders"
        (mail / "Lists.sbd").mkdir(parents=True)
        # X-Mozilla-Status: 0001 read, 0003 read+replied, 0005 read+marked, 0008 expunged.
        (mail / "Inbox").write_bytes(
            b"From - Mon Mar  4 10:20:30 2024\n"
            b"X-Mozilla-Status: 0001\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys: $label1\n"
            + msg(1) + b"\n"
            b"From - Tue Mar  5 10:20:30 2024\n"
            b"X-Mozilla-Status: 0005\nX-Mozilla-Status2: 00000000\nX-Mozilla-Keys:\n"
            + msg(2) + b"\n"
            b"From - Wed Mar  6 10:20:30 2024\n"
            b"X-Mozilla-Status: 0008\nX-Mozilla-Status2: 00000000\n"
            + msg(3) + b"\n")
        (mail / "Inbox.msf").write_text("// <!-- <mdb:mork:z v=\"1.4\"/> -->")
        (mail / "Lists").write_bytes(b"")
        (mail / "Lists.msf").write_text("")
        (mail / "Lists.sbd" / "rust").write_bytes(
            b"From - Thu Mar  7 10:20:30 2024\nX-Mozilla-Status: 0003\n" + msg(4) + b"\n")
        out = import_cli(server, "mbox", str(mail), "--user", "alice")
        assert "0 skipped" in out, out
        got = account(server, "alice")
        assert sorted(got) == ["INBOX", "Lists", "Lists/rust"]
        inbox = got["INBOX"][1]
        assert [inbox[u][0] for u in sorted(inbox)] == [
            ("$label1", "\\Seen"), ("\\Flagged", "\\Seen"), ("\\Deleted",)]
        assert inbox[1][1] == calendar.timegm((2024, 3, 4, 10, 20, 30)), "From_ date"
        assert inbox[1][2].startswith(b"X-Mozilla-Status: 0001\r\n")
        assert inbox[1][2].endswith(b"\r\nbody 1\r\n"), "separator line not in the message"
        rust = got["Lists/rust"][1]
        assert [m[0] for m in rust.values()] == [("\\Answered", "\\Seen")]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_apple_mail_export(server):
    work = tmpdir()
    try:
        exp = work / "Export"
        (exp / "Archive.mbox" / "2023.mbox").mkdir(parents=True)
        (exp / "Archive.mbox" / "mbox").write_bytes(
            b"From a@b Fri Mar  8 10:00:00 2024\nStatus: RO\nX-Status: AF\n" + msg(5) + b"\n")
        (exp / "Archive.mbox" / "table_of_contents").write_bytes(b"\x00\x01binary")
        (exp / "Archive.mbox" / "2023.mbox" / "mbox").write_bytes(
            b"From a@b Sat Mar  9 10:00:00 2024\nStatus: O\n" + msg(6) + b"\n")
        (exp / "Archive.mbox" / "2023.mbox" / "Info.plist").write_text("<plist/>")
        out = import_cli(server, "mbox", str(exp), "--user", "alice", "--folder", "Apple")
        assert "0 skipped" in out, out
        got = account(server, "alice")
        assert sorted(got) == ["Apple/Archive", "Apple/Archive/2023", "INBOX"]
        archive = got["Apple/Archive"][1]
        assert [m[0] for m in archive.values()] == [("\\Answered", "\\Flagged", "\\Seen")]
        assert [m[0] for m in got["Apple/Archive/2023"][1].values()] == [()]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_quoting_and_bare_from_lines(server):
    work = tmpdir()
    try:
        f = work / "quoted.mbox"
        f.write_bytes(
            b"From a@b Mon Mar  4 10:20:30 2024\nSubject: q\n\n"
            b">From the start\n>>From quoted twice\n\n"
            # mboxo left this one bare: no date, so it is body text (as mutt and Dovecot see it)
            b"From here on we talk\nend\n\n"
            b"From a@b Tue Mar  5 10:20:30 2024\nSubject: second\n\nx\n")
        out = import_cli(server, "mbox", str(f), "--user", "alice", "--folder", "Old")
        assert "2 messages" in out, out
        old = account(server, "alice")["Old"][1]
        assert old[1][2] == (b"Subject: q\r\n\r\nFrom the start\r\n>From quoted twice\r\n\r\n"
                             b"From here on we talk\r\nend\r\n")
        assert old[2][2] == b"Subject: second\r\n\r\nx\r\n"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_mbox_skips_are_named(make_server):
    server = make_server(extra_config="[limits]\nmax_message_size = 1000\n")
    work = tmpdir()
    try:
        d = work / "mail"
        d.mkdir()
        (d / "Big").write_bytes(
            b"From a@b Mon Mar  4 10:20:30 2024\nSubject: big\n\n" + b"y" * 5000 + b"\n\n"
            b"From a@b Mon Mar  4 10:20:31 2024\nSubject: small\n\nz\n")
        (d / "notes").write_bytes(b"just some text, not an mbox\n")
        out = import_cli(server, "mbox", str(d), "--user", "alice")
        assert "skipped (bigger than [limits] max_message_size): 1" in out, out
        assert "Big: message 1" in out, out
        assert "not an mbox file" in out and "notes" in out, out
        assert len(account(server, "alice")["Big"][1]) == 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
