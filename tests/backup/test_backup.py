"""`mailkeep backup DIR` under write load, again incrementally, `mailkeep restore DIR`, and a
server on the result: every account's messages (bytes) and flags are those of one moment.

Each account is written by one thread (APPENDs, some big enough to be body files, and UID STORE
FLAGS of exact flag sets), which logs every operation with when it was sent and acknowledged.
A backup is one snapshot, so for each account the restored state must equal the state after
the first p of its operations, for some p that includes every operation acknowledged before the
backup began and none sent after it ended. That checks completeness (nothing acknowledged
before the backup is missing), byte-exactness and flags together.
"""

import hashlib
import imaplib
import random
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import BIN, PASSWORD, Server

USERS = ("u0", "u1", "u2")


def body(rng, i, big):
    n = rng.randrange(60_000, 90_000) if big else rng.randrange(200, 3_000)
    text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))
    lines = "\r\n".join(text[j:j + 76] for j in range(0, len(text), 76))
    return (f"From: load@example.org\r\nSubject: message {i}\r\n"
            f"Message-ID: <{i}.{rng.random()}@example.org>\r\n\r\n{lines}\r\n").encode()


FLAG_SETS = ["", r"\Seen", r"\Seen \Flagged", "$Label1", r"\Answered $Label2", r"\Deleted"]


class Writer(threading.Thread):
    """Appends and flags in one account until stopped; `ops` is its history."""

    def __init__(self, server, user, seed):
        super().__init__(daemon=True)
        self.server, self.user = server, user
        self.rng = random.Random(seed)
        self.ops = []  # (sent, acked, kind, uid, value)
        self.stop = threading.Event()
        self.error = None

    def run(self):
        try:
            c = imaplib.IMAP4(*self.server.imap)
            c.login(self.user, PASSWORD)
            c.select("INBOX")
            uids, i = [], 0
            while not self.stop.is_set():
                i += 1
                if uids and self.rng.random() < 0.3:
                    uid = self.rng.choice(uids)
                    flags = self.rng.choice(FLAG_SETS)
                    sent = time.monotonic()
                    typ, _ = c.uid("STORE", str(uid), "FLAGS.SILENT", f"({flags})")
                    assert typ == "OK"
                    self.ops.append((sent, time.monotonic(), "flags", uid,
                                     frozenset(flags.split())))
                else:
                    data = body(self.rng, i, big=self.rng.random() < 0.25)
                    sent = time.monotonic()
                    typ, resp = c.append("INBOX", None, None, data)
                    assert typ == "OK", resp
                    uid = int(re.search(rb"APPENDUID \d+ (\d+)", resp[0]).group(1))
                    self.ops.append((sent, time.monotonic(), "append", uid,
                                     hashlib.sha256(data).hexdigest()))
                    uids.append(uid)
            c.logout()
        except Exception as e:  # reported by the test
            self.error = e


def replay(ops, p):
    """An account's INBOX after its first p operations: uid -> (sha256, flags)."""
    state = {}
    for _, _, kind, uid, value in ops[:p]:
        if kind == "append":
            state[uid] = (value, frozenset())
        else:
            state[uid] = (state[uid][0], value)
    return state


def restored_state(server, user):
    c = imaplib.IMAP4(*server.imap)
    c.login(user, PASSWORD)
    c.select("INBOX", readonly=True)
    typ, data = c.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
    state = {}
    for part in data:
        if not isinstance(part, tuple):
            continue
        uid = int(re.search(rb"UID (\d+)", part[0]).group(1))
        flags = re.search(rb"FLAGS \(([^)]*)\)", part[0]).group(1).decode().split()
        state[uid] = (hashlib.sha256(part[1]).hexdigest(),
                      frozenset(f for f in flags if f != r"\Recent"))
    c.logout()
    return state


def assert_one_moment(writer, restored, started, ended):
    """The restored account equals the writer's state after some prefix of its operations
    that holds everything acknowledged before `started` and nothing sent after `ended`."""
    ops = writer.ops
    low = sum(1 for op in ops if op[1] < started)
    high = sum(1 for op in ops if op[0] <= ended)
    assert low > 0, "the backup ran before any write was acknowledged"
    for p in range(low, high + 1):
        if replay(ops, p) == restored:
            return p
    missing = set(replay(ops, low)) - set(restored)
    raise AssertionError(f"{writer.user}: restored state is no prefix in [{low}, {high}] of "
                         f"{len(ops)} operations; acknowledged before the backup but missing: "
                         f"{sorted(missing)[:10]}")


def cli(*args):
    return subprocess.run([BIN, *args], text=True, capture_output=True, timeout=120)


def summary(out):
    m = re.search(r"backup: (\d+) messages, (\d+) bodies; blob files: (\d+) linked, (\d+) copied, "
                  r"(\d+) skipped, (\d+) removed; bytes: (\d+) index, (\d+) linked, (\d+) copied; "
                  r"([\d.]+) s", out)
    assert m, out
    keys = ("messages", "bodies", "linked", "copied", "skipped", "removed", "index_bytes",
            "linked_bytes", "copied_bytes")
    return dict(zip(keys, map(int, m.groups()[:9])), seconds=float(m.group(10)))


def files(d):
    blobs = Path(d) / "blobs"
    return {str(p.relative_to(blobs)) for p in blobs.rglob("*") if p.is_file()}


def restore_and_serve(backup, tmp_path, name):
    """`mailkeep restore` into a new data directory and a server on it."""
    s = Server(users=())  # a first start makes `admin`; its data directory is replaced
    s.stop()
    shutil.rmtree(s.data)
    r = cli("restore", str(backup), "--config", str(s.config))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "restore: " in r.stdout and "ok: index and message files agree" in r.stdout, r.stdout
    r = cli("check", "--config", str(s.config))
    assert r.returncode == 0, r.stdout + r.stderr
    s.start()
    return s


def test_backup_under_write_load_restores_one_moment(make_server, tmp_path):
    server = make_server(users=USERS)
    writers = [Writer(server, u, seed) for seed, u in enumerate(USERS)]
    for w in writers:
        w.start()
    bk = tmp_path / "bk"
    try:
        while min(len(w.ops) for w in writers) < 20:
            time.sleep(0.05)
            assert all(w.is_alive() for w in writers), [w.error for w in writers]
        started = time.monotonic()
        r = cli("backup", str(bk), "--config", str(server.config))
        ended = time.monotonic()
        assert r.returncode == 0, r.stdout + r.stderr
        first = summary(r.stdout)
        first_files = files(bk)
        assert first["linked"] == len(first_files) and first["copied"] == 0, first
        assert first["skipped"] == 0 and first["removed"] == 0, first
        print("first backup:", r.stdout.strip(), f"({ended - started:.2f} s wall)")
        restored = restore_and_serve(bk, tmp_path, "r1")
        try:
            for w in writers:
                assert_one_moment(w, restored_state(restored, w.user), started, ended)
        finally:
            restored.cleanup()

        # More writes, then an incremental backup into the same directory.
        target = [len(w.ops) + 20 for w in writers]
        while any(len(w.ops) < t for w, t in zip(writers, target)):
            time.sleep(0.05)
            assert all(w.is_alive() for w in writers), [w.error for w in writers]
        started = time.monotonic()
        r = cli("backup", str(bk), "--config", str(server.config))
        ended = time.monotonic()
        assert r.returncode == 0, r.stdout + r.stderr
        second = summary(r.stdout)
        second_files = files(bk)
        print("incremental backup:", r.stdout.strip())
        # Nothing was expunged: every earlier file is skipped, only new bodies are linked.
        assert first_files <= second_files
        assert second["skipped"] == len(first_files), (second, len(first_files))
        assert second["linked"] == len(second_files - first_files), second
        assert second["copied"] == 0 and second["removed"] == 0, second
        assert second["messages"] > first["messages"]
    finally:
        for w in writers:
            w.stop.set()
        for w in writers:
            w.join(30)
    assert all(w.error is None for w in writers), [w.error for w in writers]

    restored = restore_and_serve(bk, tmp_path, "r2")
    try:
        for w in writers:
            p = assert_one_moment(w, restored_state(restored, w.user), started, ended)
            print(f"{w.user}: restored = state after {p} of {len(w.ops)} operations")
    finally:
        restored.cleanup()


def test_backup_to_another_file_system_copies(make_server):
    """Across file systems the body files are copied (hard links cannot cross)."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == Path(__file__).stat().st_dev:
        pytest.skip("no second file system")
    server = make_server(users=("alice",))
    c = imaplib.IMAP4(*server.imap)
    c.login("alice", PASSWORD)
    rng = random.Random(7)
    for i in range(3):
        c.append("INBOX", None, None, body(rng, i, big=True))
    c.logout()
    import tempfile
    bk = Path(tempfile.mkdtemp(dir=shm, prefix="mailkeep-bk-"))
    try:
        if bk.stat().st_dev == server.data.stat().st_dev:
            pytest.skip("no second file system")
        r = cli("backup", str(bk), "--config", str(server.config))
        assert r.returncode == 0, r.stdout + r.stderr
        s = summary(r.stdout)
        assert (s["copied"], s["linked"]) == (3, 0), s
        r = cli("check", "--data-dir", str(bk))
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        shutil.rmtree(bk, ignore_errors=True)


def test_restore_refuses_a_non_empty_data_dir(server, tmp_path):
    bk = tmp_path / "bk"
    r = cli("backup", str(bk), "--config", str(server.config))
    assert r.returncode == 0, r.stderr
    r = cli("restore", str(bk), "--config", str(server.config))
    assert r.returncode != 0
    assert "not empty" in r.stderr, r.stderr
    r = cli("restore", str(tmp_path / "nothing"), "--data-dir", str(tmp_path / "new"))
    assert r.returncode != 0 and "not a mailkeep backup" in r.stderr, r.stderr


def test_backup_refuses_what_is_not_a_data_dir_or_inside_it(server, tmp_path):
    r = cli("backup", str(tmp_path / "bk"), "--data-dir", str(tmp_path / "none"))
    assert r.returncode != 0 and "no data directory" in r.stderr, r.stderr
    assert not (tmp_path / "none").exists()
    r = cli("backup", str(server.data / "bk"), "--config", str(server.config))
    assert r.returncode != 0 and "must be outside" in r.stderr, r.stderr
