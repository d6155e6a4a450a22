"""Message bodies outside PostgreSQL (`[store] bodies`): two nodes on one database and one
body directory (`bodies = "dir"`) or one S3-compatible bucket (`bodies = "s3"`, against a
local `moto_server`: pip install 'moto[server]'). APPEND on one node, FETCH on the other
byte-exact; a body shared by two messages is stored once; when its last message is expunged
and the expunge's hold on it ends, the file/object is deleted; `mailkeep check` is clean, and
reports and removes a file left by a crash."""

import imaplib
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import BIN, PASSWORD, Server

# 8-bit bytes, a long line, CRLF: stored and served unchanged.
MSG = (b"From: a@example.org\r\nSubject: bodies\r\nContent-Type: text/plain; charset=latin1\r\n"
       b"\r\nGr\xfc\xdfe aus dem Verzeichnis\r\n" + b"x" * 5000 + b"\r\n")
BIG = b"From: a@example.org\r\nSubject: big\r\n\r\n" + b"".join(
    b"line %06d of a bigger message\r\n" % i for i in range(20000))


@pytest.fixture
def nodes(pg):
    made = []

    def make(url, bodies_config, users=()):
        s = Server(extra_config=f'[store]\nbackend = "postgres"\nurl = "{url}"\npool_size = 4\n'
                                f'{bodies_config}', users=users)
        made.append(s)
        return s

    yield make
    for s in made:
        s.cleanup()


def login(node):
    c = imaplib.IMAP4(*node.imap)
    c.login("alice", PASSWORD)
    return c


def append(c, mailbox, msg):
    typ, data = c.append(mailbox, None, None, msg)
    assert typ == "OK", data
    return int(data[0].decode().split("APPENDUID ")[1].split()[1].rstrip("]"))


def fetch_body(c, mailbox, uid):
    c.select(mailbox)
    typ, data = c.uid("FETCH", str(uid), "(BODY.PEEK[])")
    assert typ == "OK", data
    return data[0][1]


def expunge(c, mailbox, uid):
    c.select(mailbox)
    c.uid("STORE", str(uid), "+FLAGS", "(\\Deleted)")
    typ, data = c.uid("EXPUNGE", str(uid))
    assert typ == "OK", data


def end_hold(pg, url):
    """An expunged message's body stays readable for an hour (RFC 2180 §4.1.1): make that
    hour pass for the tombstones there are."""
    pg.sql(url, "UPDATE expunged SET expunged_at = expunged_at - 7200")


def sql_int(pg, url, query):
    return int(pg.sql(url, query).strip())


def check(node):
    return subprocess.run([BIN, "check", "--config", str(node.config)],
                          capture_output=True, text=True)


def shared_body_lifecycle(pg, url, a, b, count_stored):
    """The part common to both stores; `count_stored()` counts files/objects."""
    ca, cb = login(a), login(b)
    cb.create("Other")
    u1 = append(ca, "INBOX", MSG)
    assert fetch_body(cb, "INBOX", u1) == MSG, "B reads what A stored, byte-exact"
    u2 = append(cb, "Other", MSG)
    assert fetch_body(ca, "Other", u2) == MSG
    ub = append(cb, "INBOX", BIG)
    assert fetch_body(ca, "INBOX", ub) == BIG
    assert count_stored() == 2, "the shared body is stored once"
    assert sql_int(pg, url, "SELECT count(*) FROM bodies") == 2
    assert sql_int(pg, url, "SELECT count(*) FROM bodies WHERE length(data) > 0") == 0
    assert check(a).returncode == 0, check(a).stdout

    # One of its two messages goes: the body stays for the other.
    expunge(ca, "INBOX", u1)
    end_hold(pg, url)
    expunge(cb, "INBOX", ub)  # the next expunge there lets go of held bodies
    assert fetch_body(ca, "Other", u2) == MSG
    assert count_stored() == 2, "BIG is held by its tombstone for now"
    # The last one goes with its mailbox (and the tombstone's hold with it): the file is
    # deleted right after the commit.
    expunge(ca, "Other", u2)
    ca.select("INBOX")
    typ, data = cb.delete("Other")
    assert typ == "OK", data
    assert count_stored() == 1, "MSG gone; BIG still held by its tombstone"
    # The hour passes; the next expunge in INBOX lets go of BIG.
    end_hold(pg, url)
    ud = append(ca, "INBOX", b"Subject: d\r\n\r\nd\r\n")
    assert count_stored() == 2
    expunge(ca, "INBOX", ud)
    assert count_stored() == 1, "BIG gone; 'd' held by its tombstone"
    assert sql_int(pg, url, "SELECT count(*) FROM body_deletions") == 0
    r = check(b)
    assert r.returncode == 0, r.stdout + r.stderr
    ca.logout()
    cb.logout()


def test_bodies_in_a_shared_directory(pg, nodes, tmp_path):
    url = pg.create_database()
    bodies = tmp_path / "bodies"
    conf = f'bodies = "dir"\nbodies_dir = "{bodies}"\n'
    a = nodes(url, conf, users=("alice",))
    b = nodes(url, conf)

    def files():
        return sorted(p.name for p in bodies.glob("*/*") if not p.name.startswith("."))

    shared_body_lifecycle(pg, url, a, b, lambda: len(files()))
    rows = pg.sql(url, "SELECT encode(hash, 'hex') FROM body_files ORDER BY 1").split()
    assert rows == files()

    # A file a crash left behind (written, its transaction never committed): reported and
    # removed by `mailkeep check` once it is an hour old.
    orphan = bodies / "ee" / ("ee" * 32)
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"junk")
    assert check(a).returncode == 0, "a young one may be in flight"
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    r = check(a)
    assert r.returncode == 1 and "referenced by nothing (removed)" in r.stdout, r.stdout
    assert not orphan.exists()
    assert check(a).returncode == 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_server():
    """A local S3-compatible server (moto), with an empty bucket `mail`."""
    pytest.importorskip("moto.server", reason="pip install 'moto[server]'")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/", timeout=1).read()
                break
            except Exception:  # noqa: BLE001 - not up yet
                assert time.time() < deadline, "moto_server did not start"
                time.sleep(0.2)
        import boto3
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
        s3.create_bucket(Bucket="mail")
        yield endpoint, s3
    finally:
        proc.terminate()
        proc.wait(10)


def test_bodies_in_s3(pg, nodes, s3_server):
    endpoint, s3 = s3_server
    url = pg.create_database()
    conf = (f'bodies = "s3"\n[store.s3]\nendpoint = "{endpoint}"\nbucket = "mail"\n'
            f'region = "us-east-1"\naccess_key = "test"\nsecret_key = "test"\n')
    a = nodes(url, conf, users=("alice",))
    b = nodes(url, conf)

    def objects():
        return sorted(o["Key"] for o in s3.list_objects_v2(Bucket="mail").get("Contents", []))

    shared_body_lifecycle(pg, url, a, b, lambda: len(objects()))
    rows = pg.sql(url, "SELECT encode(hash, 'hex') FROM body_files ORDER BY 1").split()
    assert [k.split("/")[1] for k in objects()] == rows
    assert all(k == f"{k[3:5]}/{k[3:]}" for k in objects())


def test_bad_s3_settings_stop_the_start(pg, tmp_path):
    """A bucket that cannot be reached is said at start, not at the first APPEND."""
    url = pg.create_database()
    conf = tmp_path / "m.toml"
    conf.write_text(f'data_dir = "{tmp_path}/d"\n[imap]\nlisten = ["127.0.0.1:0"]\n'
                    f'[store]\nbackend = "postgres"\nurl = "{url}"\nbodies = "s3"\n'
                    f'[store.s3]\nendpoint = "http://127.0.0.1:{free_port()}"\n'
                    f'bucket = "mail"\naccess_key = "k"\nsecret_key = "s"\n')
    r = subprocess.run([BIN, "check", "--config", str(conf)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "store.s3" in r.stderr, r.stderr
