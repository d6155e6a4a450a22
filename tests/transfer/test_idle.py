"""Import while the server serves: a client in IDLE sees the new mail appear (the server
notices the other process's commits, `store/src/sqlite/watch.rs`), and the server keeps
answering fresh clients meanwhile."""

import re
import shutil
import subprocess
import time

from helpers import login, tmpdir, write_maildir
from mkserver import BIN, assert_responsive


# Enough mail that the import outlasts the server's first look at the database (every 500 ms):
# 3,000 messages once took under 0.6 s on an idle machine.
TOTAL = 12000


def test_idle_client_sees_import(server):
    work = tmpdir()
    try:
        write_maildir(work / "md", TOTAL, size=2000)
        c = login(server, "alice")
        c.select("INBOX")
        sock = c.socket()
        sock.sendall(b"i1 IDLE\r\n")
        f = sock.makefile("rb")
        assert f.readline().startswith(b"+"), "IDLE accepted"
        started = time.monotonic()
        proc = subprocess.Popen([BIN, "import", "maildir", str(work / "md"), "--user", "alice",
                                 "--config", str(server.config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            sock.settimeout(60)
            first = None
            first_count = None
            seen = 0
            while seen < TOTAL:
                line = f.readline()
                assert line, "connection closed"
                m = re.match(rb"\* (\d+) EXISTS", line)
                if m:
                    seen = int(m.group(1))
                    if first is None:
                        first = time.monotonic() - started
                        first_count = seen
                        assert_responsive(server)
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        finally:
            if proc.poll() is None:
                proc.kill()
        print(f"first EXISTS {first:.2f} s after the import started, {first_count} messages")
        # Seen in part: the server showed commits of the import before its last one.
        assert first_count < TOTAL, "mail appeared only once the import was done"
        # The first batch (500 messages) commits within a second or so; the server looks at
        # the database every 500 ms.
        assert first < 4.0, f"first EXISTS after {first:.2f} s"
        sock.sendall(b"DONE\r\n")
        while not f.readline().startswith(b"i1 "):
            pass
        c.logout()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_fresh_login_sees_all_after_import(server):
    work = tmpdir()
    try:
        write_maildir(work / "md", 10)
        c = login(server, "alice")
        c.select("INBOX")
        r = server.cli("import", "maildir", str(work / "md"), "--user", "alice")
        assert r.returncode == 0, r.stderr
        # A NOOP of the session that was there all along reports the new mail.
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            typ, data = c.noop()
            if c.untagged_responses.get("EXISTS", [b"0"])[-1] == b"10":
                break
            time.sleep(0.1)
        typ, data = c.search(None, "ALL")
        assert len(data[0].split()) == 10
        c.logout()
    finally:
        shutil.rmtree(work, ignore_errors=True)
