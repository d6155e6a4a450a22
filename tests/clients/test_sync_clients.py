"""Real sync clients against the real server: mbsync (isync), offlineimap3 and curl."""

import imaplib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

MSG = (b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\n"
       b"Subject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\nBody of %s.\r\n")


def msg(n):
    return MSG % (n.encode(), n.encode(), n.encode())


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (scripts/test.sh installs it)")


def imap(server, user="alice"):
    c = imaplib.IMAP4(*server.imap)
    c.login(user, "pass")
    return c


def maildir_messages(folder):
    out = []
    for sub in ("cur", "new"):
        d = folder / sub
        if d.exists():
            out += [d / f for f in os.listdir(d)]
    return out


def test_mbsync_two_way(server, tmp_path):
    need("mbsync")
    c = imap(server)
    for i in range(3):
        c.append("INBOX", None, None, msg(f"inbox-{i}"))
    c.create("Projects")
    c.append("Projects", "(\\Flagged)", None, msg("project-0"))
    local = tmp_path / "mail"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""
IMAPAccount mk
Host {server.imaps[0]}
Port {server.imaps[1]}
User alice
Pass pass
SSLType IMAPS
CertificateFile {server.cert}

IMAPStore remote
Account mk

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")
    run = lambda: subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True, timeout=120)
    r = run()
    assert r.returncode == 0, r.stderr
    assert len(maildir_messages(local / "INBOX")) == 3
    projects = maildir_messages(local / "Projects")
    assert len(projects) == 1 and projects[0].name.endswith("F")
    for name in ("Sent", "Drafts", "Trash"):
        assert (local / name).exists()
    # Local changes go up: a new message, a flag, a deletion.
    new = local / "Projects" / "new" / "1700000000.local.host"
    new.write_bytes(msg("written-locally"))
    inbox = sorted(maildir_messages(local / "INBOX"))
    inbox[0].rename(str(inbox[0]) + ("S" if "," in inbox[0].name else ":2,S"))
    inbox[1].unlink()
    r = run()
    assert r.returncode == 0, r.stderr
    c.select("Projects")
    typ, data = c.search(None, "SUBJECT", "written-locally")
    assert data[0] != b""
    c.select("INBOX")
    typ, data = c.search(None, "ALL")
    assert len(data[0].split()) == 2
    typ, data = c.search(None, "SEEN")
    assert len(data[0].split()) == 1
    # A server-side change comes down.
    c.store("1", "+FLAGS", "\\Flagged")
    r = run()
    assert r.returncode == 0, r.stderr
    flagged = [p for p in maildir_messages(local / "INBOX") if "F" in p.name.split(",")[-1]]
    assert len(flagged) == 1


def test_offlineimap_sync(server, tmp_path):
    need("offlineimap")
    c = imap(server)
    for i in range(4):
        c.append("INBOX", "(\\Seen)" if i % 2 else None, None, msg(f"off-{i}"))
    c.create("Lists/Rust")
    c.append("Lists/Rust", None, None, msg("rust-0"))
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
remotehost = localhost
remoteport = {server.imaps[1]}
remoteuser = alice
remotepass = pass
ssl = yes
sslcacertfile = {server.cert}
""")
    r = subprocess.run(["offlineimap", "-c", str(rc), "-o", "-u", "basic"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(maildir_messages(local / "INBOX")) == 4
    assert len(maildir_messages(local / "Lists" / "Rust")) == 1 or len(maildir_messages(local / "Lists.Rust")) == 1
    seen = [p for p in maildir_messages(local / "INBOX") if "S" in p.name.split(",")[-1]]
    assert len(seen) == 2


def test_curl_list_fetch_upload(server, tmp_path):
    need("curl")
    base = f"imap://{server.imap[0]}:{server.imap[1]}"
    auth = ["--user", "alice:pass"]
    up = tmp_path / "up.eml"
    up.write_bytes(msg("curl-upload"))
    r = subprocess.run(["curl", "-sS", *auth, "-T", str(up), f"{base}/INBOX"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(["curl", "-sS", *auth, f"{base}/"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "INBOX" in r.stdout and "Sent" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(["curl", "-sS", *auth, f"{base}/INBOX;UID=1"], capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout.replace(b"\r\n", b"\n") == msg("curl-upload").replace(b"\r\n", b"\n"), r.stdout
    # imaps:// with the generated certificate
    tls = f"imaps://localhost:{server.imaps[1]}"
    r = subprocess.run(["curl", "-sS", "--cacert", server.cert, *auth, f"{tls}/INBOX;UID=1;SECTION=HEADER.FIELDS%20(SUBJECT)"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "curl-upload" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(["curl", "-sS", *auth, "-X", "SEARCH SUBJECT curl-upload", f"{base}/INBOX"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "SEARCH 1" in r.stdout, r.stdout + r.stderr
