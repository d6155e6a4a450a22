"""`mailkeep migrate` against the real binary: a Dovecot (Debian's dovecot-imapd) started
unprivileged on a free loopback port in a temporary directory, with Maildirs written directly
on disk; and Mailkeep itself as a source. See tests/lib/mkserver.py for the Mailkeep side."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from mkserver import (  # noqa: E402,F401
    BIN, PASSWORD, ROOT, Server, assert_responsive, server_fixtures,
)

server, make_server = server_fixtures(Server)

HERE = Path(__file__).resolve().parent
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
MAIL_UID = 8  # Debian's `mail` user, Dovecot's first_valid_uid in dovecot.conf.in
MASTER, MASTER_PASSWORD = "admin", "masterpw"

# Maildir flag letters (sorted as Dovecot writes them) of IMAP system flags.
FLAG_LETTERS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S",
                "\\Deleted": "T"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dovecot:
    """A Dovecot with users `name:pass` (password `pass`) and the master user admin/masterpw."""

    def __init__(self, users):
        self.dir = Path(tempfile.mkdtemp(prefix="mailkeep-migrate-dovecot-"))
        os.chmod(self.dir, 0o755)
        for sub in ("run", "state", "log", "mail"):
            (self.dir / sub).mkdir()
        os.chown(self.dir / "mail", MAIL_UID, MAIL_UID)
        self.port = free_port()
        (self.dir / "users").write_text("".join(f"{u}:{{PLAIN}}{PASSWORD}::::::\n" for u in users))
        (self.dir / "masters").write_text(f"{MASTER}:{{PLAIN}}{MASTER_PASSWORD}\n")
        conf = (HERE / "dovecot.conf.in").read_text()
        conf = conf.replace("@DIR@", str(self.dir)).replace("@PORT@", str(self.port))
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(conf)
        self.started = False

    def start(self):
        subprocess.run([DOVECOT, "-c", str(self.conf)], check=True)
        self.started = True
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("dovecot did not listen")

    def stop(self):
        if self.started:
            subprocess.run(["doveadm", "-c", str(self.conf), "stop"], capture_output=True)
            self.started = False

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def maildir(self, user, folder="INBOX"):
        """The Maildir++ directory of `folder` ('.'-separated as in the namespace)."""
        base = self.dir / "mail" / user / "Maildir"
        return base if folder == "INBOX" else base / f".{folder}"

    def write_folder(self, user, folder, messages, keywords=()):
        """Writes `messages` [(bytes, [flags], mtime)] into cur/ of the folder, with
        `keywords` (in order) in dovecot-keywords. Flags may name keywords."""
        home = self.dir / "mail" / user
        d = self.maildir(user, folder)
        for p in (home, home / "Maildir", d, d / "cur", d / "new", d / "tmp"):
            p.mkdir(exist_ok=True)
            os.chown(p, MAIL_UID, MAIL_UID)
        if keywords:
            kw = d / "dovecot-keywords"
            kw.write_text("".join(f"{i} {k}\n" for i, k in enumerate(keywords)))
            os.chown(kw, MAIL_UID, MAIL_UID)
        for i, (data, flags, mtime) in enumerate(messages):
            letters = "".join(sorted(FLAG_LETTERS[f] for f in flags if f in FLAG_LETTERS))
            letters += "".join(sorted(chr(ord("a") + keywords.index(f)) for f in flags
                                      if f in keywords))
            name = d / "cur" / f"{mtime}.M{i}P1.test,S={len(data)},W={len(data)}:2,{letters}"
            fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, data)
            os.fchown(fd, MAIL_UID, MAIL_UID)
            os.close(fd)
            os.utime(name, (mtime, mtime))


@pytest.fixture
def make_dovecot():
    made = []

    def make(users=("alice",)):
        d = Dovecot(users)
        made.append(d)
        return d

    yield make
    for d in made:
        d.cleanup()


def message(n, folder, size=600):
    """A small CRLF message with a unique Message-ID."""
    body = (f"line {n} of the migration test in {folder}\r\n" * (size // 40 + 1))[:size]
    return (f"From: Sender {n} <s{n}@example.org>\r\n"
            f"To: alice@example.org\r\n"
            f"Subject: message {n} in {folder}\r\n"
            f"Date: Mon, 01 Jan 2024 10:{n % 60:02d}:00 +0000\r\n"
            f"Message-ID: <m{n}.{folder.replace(' ', '_')}@test>\r\n"
            f"\r\n{body}\r\n").encode()


class Run:
    """How a `mailkeep migrate` run ended: returncode, stdout, stderr, peak RSS (KiB), seconds."""

    def __init__(self, returncode, stdout, stderr, maxrss_kib, seconds):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr
        self.maxrss_kib, self.seconds = maxrss_kib, seconds

    def __repr__(self):
        return f"rc={self.returncode}\n--stdout--\n{self.stdout}\n--stderr--\n{self.stderr}"


def migrate(target, *args, password=PASSWORD, timeout=300, stop=True):
    """Runs `mailkeep migrate` into the target server's data directory (the server is stopped
    meanwhile unless `stop` is false), with `password` on standard input."""
    was_running = stop and target.proc and target.proc.poll() is None
    if was_running:
        target.stop()
    try:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
                tempfile.TemporaryFile() as inp:
            inp.write(((password or "") + "\n").encode())
            inp.seek(0)
            start = time.monotonic()
            p = subprocess.Popen([BIN, "migrate", *args, "--config", str(target.config)],
                                 stdin=inp, stdout=out, stderr=err)
            deadline = time.monotonic() + timeout
            # Peak RSS: the process's own VmHWM, polled (wait4's ru_maxrss would start from
            # this Python process's size at the fork).
            hwm = 0
            while True:
                try:
                    for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            hwm = max(hwm, int(line.split()[1]))
                except (OSError, ValueError):
                    pass
                pid, status = os.waitpid(p.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    p.kill()
                    pid, status = os.waitpid(p.pid, 0)
                    break
                time.sleep(0.01)
            p.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.monotonic() - start
            out.seek(0)
            err.seek(0)
            return Run(p.returncode, out.read().decode(errors="replace"),
                       err.read().decode(errors="replace"), hwm, seconds)
    finally:
        if was_running:
            target.start()
