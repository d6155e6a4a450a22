"""The current binary on data directories written by earlier formats
(tests/fixtures/datadir-v<N>/, made by tests/fixtures/make_datadir.py with a build of each
version): upgraded at start with `index.sqlite3.v<N>.bak` kept, `mailkeep check` clean, and a
client logs in with the account's password and reads every message and its flags as a client
of the old version saw them. A newer format is refused with a clear message."""

import hashlib
import imaplib
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import ROOT, Server
from test_backup import cli

FIXTURES = ROOT / "tests" / "fixtures"
CURRENT = 5


def expected(version):
    info, messages = {}, []
    for line in (FIXTURES / f"datadir-v{version}" / "expected.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        w = line.split()
        if len(w) == 2:
            info[w[0]] = w[1]
        else:
            messages.append((w[0], int(w[1]), int(w[2]), w[3], frozenset(w[4:])))
    return info, messages


def server_on_fixture(version):
    s = Server(users=())
    s.stop()
    shutil.rmtree(s.data)
    shutil.copytree(FIXTURES / f"datadir-v{version}" / "data", s.data)
    return s


def user_version(path):
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
def test_fixture_upgrades_and_reads(version):
    info, messages = expected(version)
    s = server_on_fixture(version)
    try:
        index = s.data / "index.sqlite3"
        assert user_version(index) == version
        s.start()
        assert user_version(index) == CURRENT
        bak = s.data / f"index.sqlite3.v{version}.bak"
        if version < CURRENT:
            assert user_version(bak) == version
        else:
            assert not bak.exists()
        c = imaplib.IMAP4(*s.imap)
        c.login(info["user"], info["password"])
        for box in sorted({m[0] for m in messages}):
            c.select(box, readonly=True)
            typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
            got = set()
            for part in data:
                if isinstance(part, tuple):
                    uid = int(re.search(rb"UID (\d+)", part[0]).group(1))
                    flags = re.search(rb"FLAGS \(([^)]*)\)", part[0]).group(1).decode().split()
                    got.add((box, uid, len(part[1]), hashlib.sha256(part[1]).hexdigest(),
                             frozenset(f for f in flags if f != r"\Recent")))
            assert got == {m for m in messages if m[0] == box}
        typ, data = c.uid("SEARCH", "BODY", "noon")
        c.logout()
        s.stop()
        r = cli("check", "--config", str(s.config))
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        s.cleanup()


def test_newer_format_is_refused():
    s = server_on_fixture(CURRENT)
    try:
        index = s.data / "index.sqlite3"
        db = sqlite3.connect(index)
        db.execute(f"PRAGMA user_version = {CURRENT + 1}")
        db.commit()
        db.close()
        before = index.read_bytes()
        for args in (["serve"], ["check"]):
            r = cli(*args, "--config", str(s.config))
            assert r.returncode != 0
            assert f"version {CURRENT + 1}, newer than this mailkeep knows ({CURRENT})" \
                in r.stderr, r.stderr
        assert index.read_bytes() == before
    finally:
        s.cleanup()
