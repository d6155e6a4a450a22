"""Shared by the transfer tests: IMAP snapshots of an account, Maildir and mbox writers."""

import imaplib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from mkserver import PASSWORD, ROOT  # noqa: F401


def login(server, user):
    c = imaplib.IMAP4(*server.imap)
    c.login(user, PASSWORD)
    return c


def quoted(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def folders(c):
    typ, data = c.list()
    assert typ == "OK", data
    out = []
    for line in data:
        m = re.match(rb'\(([^)]*)\) (?:"."|NIL) (.*)$', line)
        attrs = m.group(1).lower()
        if b"\\noselect" in attrs or b"\\nonexistent" in attrs:
            continue
        name = m.group(2).decode()
        if name.startswith('"'):
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out.append(name)
    return sorted(out)


def snapshot(c, folder, body=True):
    """(UIDVALIDITY, {uid: (flags, internaldate, bytes)}) of a folder."""
    typ, _ = c.select(quoted(folder), readonly=True)
    assert typ == "OK", folder
    uidvalidity = int(c.untagged_responses.get("UIDVALIDITY", [b"0"])[-1])
    items = "(UID FLAGS INTERNALDATE BODY.PEEK[])" if body else "(UID FLAGS INTERNALDATE)"
    typ, data = c.uid("FETCH", "1:*", items)
    assert typ == "OK", data
    out = {}
    for item in data:
        if item is None or item == b")":
            continue
        head, payload = (item if isinstance(item, tuple) else (item, None))
        uid = int(re.search(rb"UID (\d+)", head).group(1))
        flags = tuple(sorted(f.decode() for f in
                             re.search(rb"FLAGS \(([^)]*)\)", head).group(1).split()
                             if f != b"\\Recent"))
        out[uid] = (flags, _epoch(head), payload)
    return uidvalidity, out


def _epoch(head):
    """INTERNALDATE as seconds since the epoch (zone applied)."""
    import calendar
    import time
    m = re.search(rb'INTERNALDATE "([^"]+)"', head)
    t = time.strptime(m.group(1).decode()[:20], "%d-%b-%Y %H:%M:%S")
    zone = m.group(1).decode()[21:]
    secs = calendar.timegm(t)
    off = int(zone[1:3]) * 3600 + int(zone[3:5]) * 60
    return secs - off if zone[0] == "+" else secs + off


def account(server, user, body=True):
    """{folder: (uidvalidity, {uid: (flags, date, bytes)})} of an account."""
    c = login(server, user)
    try:
        return {f: snapshot(c, f, body) for f in folders(c)}
    finally:
        c.logout()


def import_cli(server, *args):
    r = server.cli("import", *args)
    assert r.returncode == 0, r.stderr
    return r.stderr


def export_cli(server, *args):
    r = server.cli("export", *args)
    assert r.returncode == 0, r.stderr
    return r.stderr


DOVECOT_CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
mail_location = maildir:{d}/home/Maildir
ssl = no
first_valid_uid = 0
first_valid_gid = 0
mail_uid = {uid}
mail_gid = {uid}
namespace inbox {{
  inbox = yes
  separator = /
}}
"""


def doveadm(workdir):
    """A function running `doveadm -c` on a Dovecot of its own under `workdir`, as Dovecot
    writes a Maildir (run as the `nobody` user when we are root: Dovecot refuses root), or None
    when doveadm cannot run here."""
    exe = shutil.which("doveadm")
    if not exe:
        return None
    d = Path(workdir)
    uid = 65534 if os.geteuid() == 0 else os.geteuid()
    for sub in ("run", "state", "home"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chmod(d, 0o755)
        os.chown(d / "home", uid, uid)
    conf = d / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(d=d, uid=uid))
    env = dict(os.environ, USER="dovetest", HOME=str(d / "home"))

    def run(*args, input=None):
        r = subprocess.run([exe, "-c", str(conf), *args], input=input, env=env,
                           capture_output=True)
        assert r.returncode == 0, (args, r.stderr)
        return r.stdout

    try:
        run("mailbox", "list")
    except AssertionError:
        return None
    run.maildir = d / "home" / "Maildir"
    return run


def message(i, size=0, subject=None):
    """A small test message (about `size` bytes if given), LF line ends."""
    body = f"message {i}\n" + ("x" * 70 + "\n") * (size // 71)
    return (f"From: sender{i}@example.org\nTo: alice@example.org\n"
            f"Subject: {subject or f'test {i}'}\nMessage-ID: <{i}@example.org>\n"
            f"Date: Mon, 4 Mar 2024 10:00:00 +0000\n\n{body}").encode()


def write_maildir(root, n, size=0, start_uid=1, uidvalidity=1234567, folder=""):
    """A Maildir++ folder as Dovecot leaves it: `n` messages in cur/ (seen) with `,S=` and
    `,W=` and a version 3 dovecot-uidlist."""
    d = Path(root) / folder if folder else Path(root)
    for sub in ("cur", "new", "tmp"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        data = message(i, size)
        crlf = len(data) + data.count(b"\n")
        base = f"{1700000000 + i}.M{i}P1.host,S={len(data)},W={crlf}"
        p = d / "cur" / f"{base}:2,S"
        p.write_bytes(data)
        os.utime(p, (1700000000 + i, 1700000000 + i))
        lines.append(f"{start_uid + i} :{base}")
    (d / "dovecot-uidlist").write_text(
        f"3 V{uidvalidity} N{start_uid + n} G0123456789abcdef0123456789abcdef\n"
        + "".join(line + "\n" for line in lines))
    return d


def tmpdir():
    return Path(tempfile.mkdtemp(prefix="mailkeep-transfer-"))
