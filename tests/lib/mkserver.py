"""The real `mailkeep` binary on 127.0.0.1 with port-0 listeners, for the Python tests.

Shared by tests/clients and tests/hostile (each conftest.py puts this folder on sys.path).

MAILKEEP_TEST_STORE=postgres runs every server on PostgreSQL instead of the embedded store:
a throwaway PostgreSQL started once per pytest process (tests/lib/pgserver.py), one database
per server. Tests that look at the embedded store's files skip on that pass
(`@sqlite_only("why")`).
"""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("MAILKEEP_BIN", str(ROOT / "target" / "debug" / "mailkeep"))
PASSWORD = "pass"
# The store the servers use: "sqlite" (the embedded one, the default) or "postgres".
STORE = os.environ.get("MAILKEEP_TEST_STORE", "sqlite")


def sqlite_only(reason):
    """Marks a test that needs the embedded store's files: skipped on the PostgreSQL pass."""
    import pytest

    return pytest.mark.skipif(STORE == "postgres",
                              reason=f"needs the embedded store: {reason}")


class Server:
    """A running server with its data directory, ports and users."""

    def __init__(self, extra_config="", users=("alice", "bob"), wait_for=()):
        # Listener kinds besides imap/imaps whose "<kind> listening on" line to wait for
        # (e.g. "pop3", "pop3s"); each becomes an attribute like `self.imap`.
        self.wait_for = tuple(wait_for)
        self.dir = Path(tempfile.mkdtemp(prefix="mailkeep-test-"))
        self.data = self.dir / "data"
        self.config = self.dir / "mailkeep.toml"
        self.pg_url = None
        if STORE == "postgres" and "backend = " not in extra_config:
            import pgserver

            self.pg_url = pgserver.shared().create_database()
            extra_config = pgserver.with_store(extra_config, self.pg_url)
        self.config.write_text(
            f'data_dir = "{self.data}"\n[imap]\nlisten = ["127.0.0.1:0"]\n'
            f'[imaps]\nlisten = ["127.0.0.1:0"]\n{extra_config}'
        )
        for u in users:
            self.add_user(u)
        self.proc = None
        self.start()

    def add_user(self, name, password=PASSWORD):
        # The test password is shorter than the password policy wants; binaries from before
        # the policy do not know the flag (MAILKEEP_BIN=old binary), so try without it too.
        for flags in (["--allow-weak-password"], []):
            r = subprocess.run([BIN, "user", "add", name, *flags, "--config", str(self.config)],
                               input=password + "\n", text=True, capture_output=True)
            if r.returncode == 0:
                return
        raise AssertionError(f"user add {name} failed: {r.stderr}")

    def start(self):
        self.log = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen([BIN, "serve", "--config", str(self.config)],
                                     stdout=subprocess.PIPE, stderr=self.log)
        self.imap = self.imaps = None
        for kind in self.wait_for:
            setattr(self, kind, None)
        wanted = ("imap", "imaps") + self.wait_for
        # LMTP listeners ([lmtp] listen), printed before the IMAP ones: a TCP (host, port)
        # and a Unix socket path.
        self.lmtp = self.lmtp_unix = None
        deadline = time.time() + 30
        while any(getattr(self, k) is None for k in wanted) and time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                break
            if line.startswith("mailkeep: ") and " listening on " in line:
                kind, addr = line[len("mailkeep: "):].strip().split(" listening on ")
                if kind == "lmtp" and addr.startswith("/"):
                    self.lmtp_unix = addr
                    continue
                host, port = addr.rsplit(":", 1)
                setattr(self, kind, (host, int(port)))
        assert all(getattr(self, k) for k in wanted), "server did not print its addresses"
        out = self.proc.stdout
        threading.Thread(target=lambda: [None for _ in iter(out.readline, b"")], daemon=True).start()

    @property
    def cert(self):
        return str(self.data / "tls" / "cert.pem")

    def tls_context(self):
        ctx = ssl.create_default_context(cafile=self.cert)
        return ctx

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cli(self, *args, input=None):
        return subprocess.run([BIN, *args, "--config", str(self.config)], input=input,
                              text=True, capture_output=True)

    def cleanup(self):
        exited = self.proc.poll() if self.proc else None
        self.stop()
        self.print_log_tail(exited)
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.pg_url:
            import pgserver

            try:
                pgserver.shared().drop_database(self.pg_url)
            except AssertionError:
                pass

    def print_log_tail(self, exited, size=8000):
        """The end of server.log on stdout, before the directory goes: pytest shows it only for
        a test that failed (what the server logged, and whether it had exited on its own).
        Outside pytest (the measurement scripts) nothing is printed: it would bury their figures."""
        log = self.dir / "server.log"
        if not log.exists() or "PYTEST_CURRENT_TEST" not in os.environ:
            return
        with open(log, "rb") as f:
            f.seek(max(0, log.stat().st_size - size))
            tail = f.read().decode(errors="replace")
        print(f"--- end of server.log (exit status before the test stopped it: {exited}) ---")
        print(tail)

    def rss_kib(self):
        """Resident memory of the server process, in KiB (VmRSS)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def spool_files(self):
        """Files in the spool directory (literals being received)."""
        spool = self.data / "spool"
        return sorted(p.name for p in spool.iterdir()) if spool.exists() else []


def assert_responsive(server, within=1.0):
    """A fresh client gets the greeting and a NOOP answer within `within` seconds."""
    start = time.monotonic()
    with socket.create_connection(server.imap, timeout=within) as s:
        s.settimeout(max(0.05, within - (time.monotonic() - start)))
        f = s.makefile("rb")
        greeting = f.readline()
        assert greeting.startswith(b"* OK"), greeting
        s.sendall(b"r1 NOOP\r\n")
        while True:
            line = f.readline()
            assert line, "connection closed"
            if line.startswith(b"r1 "):
                assert line.startswith(b"r1 OK"), line
                break
    took = time.monotonic() - start
    assert took < within, f"fresh client answered in {took:.2f} s"
    return took


def server_fixtures(factory):
    """The `server` and `make_server` pytest fixtures of a test folder, for servers made by
    `factory(**kw)` (cleaned up after each test). In a conftest.py:
    `server, make_server = server_fixtures(Server)`."""
    import pytest

    @pytest.fixture(name="server")
    def server_fixture():
        s = factory()
        yield s
        s.cleanup()

    @pytest.fixture(name="make_server")
    def make_server_fixture():
        made = []

        def make(**kw):
            s = factory(**kw)
            made.append(s)
            return s

        yield make
        for s in made:
            s.cleanup()

    return server_fixture, make_server_fixture
