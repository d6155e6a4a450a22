"""A real client with COMPRESS=DEFLATE (RFC 4978): mbsync (isync) turns compression on when
the server offers it after login; a two-way sync must work the same over the compressed
stream (implicit TLS here, as mbsync users run it)."""

import imaplib
import os
import shutil
import subprocess

import pytest

MSG = (b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\n"
       b"Subject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\n%s\r\n")


def msg(n, body_lines=1):
    body = b"\r\n".join(b"Body line %d of %s." % (i, n.encode()) for i in range(body_lines))
    return MSG % (n.encode(), n.encode(), body)


def maildir_messages(folder):
    out = []
    for sub in ("cur", "new"):
        d = folder / sub
        if d.exists():
            out += [d / f for f in os.listdir(d)]
    return out


def test_mbsync_syncs_over_compress_deflate(server, tmp_path):
    if shutil.which("mbsync") is None:
        pytest.skip("mbsync is not installed (scripts/test.sh installs it)")
    c = imaplib.IMAP4(*server.imap)
    c.login("alice", "pass")
    big = msg("big", body_lines=20_000)
    for i in range(3):
        c.append("INBOX", None, None, msg(f"inbox-{i}"))
    c.append("INBOX", None, None, big)
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
Patterns INBOX
Create Both
Expunge Both
SyncState *
""")

    def run():
        # -Dn: the IMAP dialogue on stdout (to see that COMPRESS was used).
        r = subprocess.run(["mbsync", "-Dn", "-c", str(rc), "-a"], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr
        return r.stdout

    out = run()
    assert "COMPRESS DEFLATE" in out, out[-3000:]
    got = maildir_messages(local / "INBOX")
    assert len(got) == 4
    # The big body arrives whole (mbsync may add a header of its own, so compare bodies).
    body = big.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")
    assert any(p.read_bytes().replace(b"\r\n", b"\n").endswith(body) for p in got)
    # Local changes go up through the compressed stream: a new message and a flag.
    new = local / "INBOX" / "new" / "1700000000.local.host"
    new.write_bytes(msg("written-locally", body_lines=5000))
    first = sorted(maildir_messages(local / "INBOX"))[0]
    first.rename(str(first) + ("S" if "," in first.name else ":2,S"))
    out = run()
    assert "COMPRESS DEFLATE" in out
    c.select("INBOX")
    typ, data = c.search(None, "SUBJECT", "written-locally")
    assert data[0] != b"", data
    typ, data = c.search(None, "SEEN")
    assert len(data[0].split()) == 1, data
    c.logout()
