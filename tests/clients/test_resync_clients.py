"""Real sync clients resynchronizing after another client's changes: mbsync (isync) and
offlineimap3 sync INBOX, another client flags, marks seen and expunges messages, and the second
sync must leave exactly the server's state locally. (Neither installed version uses CONDSTORE
or QRESYNC; they compare UID lists and flags, which must agree with what QRESYNC reports.)"""

import imaplib
import os
import shutil
import subprocess

import pytest

MSG = (b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\n"
       b"Subject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\nBody of %s.\r\n")


def msg(n):
    return MSG % (n.encode(), n.encode(), n.encode())


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (scripts/test.sh installs it)")


def local_state(folder):
    """{subject: maildir flags} of a maildir folder."""
    state = {}
    for sub in ("cur", "new"):
        d = folder / sub
        if not d.exists():
            continue
        for name in os.listdir(d):
            subject = next(line for line in (d / name).read_bytes().splitlines()
                           if line.startswith(b"Subject: "))[9:].decode()
            state[subject] = name.split(":2,")[-1] if ":2," in name else ""
    return state


def other_client_changes(server, names):
    """Another client: \\Flagged on the first, \\Seen on the second, the third and fourth
    expunged, and a new message."""
    c = imaplib.IMAP4(*server.imap)
    c.login("alice", "pass")
    c.select("INBOX")
    c.store("1", "+FLAGS", "\\Flagged")
    c.store("2", "+FLAGS", "\\Seen")
    c.store("3:4", "+FLAGS", "\\Deleted")
    c.expunge()
    c.append("INBOX", None, None, msg(names + "-new"))
    c.logout()


def seed(server, names, count=5):
    c = imaplib.IMAP4(*server.imap)
    c.login("alice", "pass")
    for i in range(count):
        c.append("INBOX", None, None, msg(f"{names}-{i}"))
    c.logout()


def expected(names):
    return {
        f"{names}-0": "F",
        f"{names}-1": "S",
        f"{names}-4": "",
        f"{names}-new": "",
    }


def test_mbsync_resync_after_other_client(server, tmp_path):
    need("mbsync")
    seed(server, "mb")
    local = tmp_path / "mail"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""
IMAPAccount mk
Host {server.imap[0]}
Port {server.imap[1]}
User alice
Pass pass
SSLType None

IMAPStore remote
Account mk

MaildirStore local
Path {local}/
Inbox {local}/INBOX

Channel sync
Far :remote:
Near :local:
Patterns INBOX
Create Both
Expunge Both
SyncState *
""")

    def run():
        r = subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr

    run()
    assert local_state(local / "INBOX") == {f"mb-{i}": "" for i in range(5)}
    other_client_changes(server, "mb")
    run()
    assert local_state(local / "INBOX") == expected("mb")
    # A third run changes nothing.
    run()
    assert local_state(local / "INBOX") == expected("mb")


def test_offlineimap_resync_after_other_client(server, tmp_path):
    need("offlineimap")
    seed(server, "off")
    local = tmp_path / "mail"
    rc = tmp_path / "offlineimaprc"
    rc.write_text(f"""
[general]
accounts = mk
metadata = {tmp_path}/meta

[Account mk]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {local}

[Repository remote]
type = IMAP
remotehost = {server.imap[0]}
remoteport = {server.imap[1]}
remoteuser = alice
remotepass = pass
ssl = no
starttls = no
folderfilter = lambda f: f == 'INBOX'
""")

    def run():
        r = subprocess.run(["offlineimap", "-c", str(rc), "-o", "-u", "basic"],
                           capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr

    run()
    assert local_state(local / "INBOX") == {f"off-{i}": "" for i in range(5)}
    other_client_changes(server, "off")
    run()
    assert local_state(local / "INBOX") == expected("off")
