"""A throwaway PostgreSQL server for the Python tests: initdb into a temporary directory,
unix socket only, fsync off (as root it runs as the `postgres` user); one database per
test or per mailkeep server.

Used by tests/postgres (a `pg` fixture per pytest session) and by tests/lib/mkserver.py
when MAILKEEP_TEST_STORE=postgres (one server per pytest process, see `shared()`)."""

import atexit
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path


class NoPostgres(Exception):
    """PostgreSQL is not installed here."""


def _bin_dir():
    if os.environ.get("MAILKEEP_PG_BIN"):
        return Path(os.environ["MAILKEEP_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


class Postgres:
    def __init__(self):
        self.bin = _bin_dir()
        if self.bin is None:
            raise NoPostgres("PostgreSQL is not installed (apt-get install postgresql)")
        self.dir = Path(tempfile.mkdtemp(prefix="mkpg-"))
        self.root = os.geteuid() == 0
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = 5432
        self.run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres",
                 "-E", "UTF8", "--locale=C", "--no-sync")
        # fsync off (the machine does not crash), but commits written before they are
        # acknowledged: a PostgreSQL killed by `restart -m immediate` keeps what it said OK to.
        self.opts = opts = (f"-k {self.dir} -p {self.port} -c listen_addresses='' -c fsync=off "
                            "-c max_connections=300")
        self.run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"),
                 "-o", opts, "-w", "start")

    def restart(self, mode="fast"):
        """`pg_ctl restart -m <mode>` (fast or immediate): every connection is cut; returns the
        seconds the server took to be back (pg_ctl -w waits for it)."""
        import time
        start = time.monotonic()
        self.run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"),
                 "-m", mode, "-o", self.opts, "-w", "restart")
        return time.monotonic() - start

    def halt(self):
        """`pg_ctl stop -m fast`: the database is gone until `resume()`."""
        self.run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def resume(self):
        self.run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"),
                 "-o", self.opts, "-w", "start")

    def run(self, tool, *args):
        cmd = [str(self.bin / tool), *args]
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, f"{tool}: {r.stdout}{r.stderr}"
        return r.stdout

    def create_database(self):
        name = "t" + uuid.uuid4().hex[:12]
        self.run("createdb", "-h", str(self.dir), "-p", str(self.port), "-U", "postgres", name)
        sock = str(self.dir).replace("/", "%2F")
        return f"postgres://postgres@{sock}:{self.port}/{name}"

    def drop_database(self, url):
        db = url.rsplit("/", 1)[1]
        self.run("dropdb", "-h", str(self.dir), "-p", str(self.port), "-U", "postgres",
                 "--if-exists", "--force", db)

    def sql(self, url_db, query):
        db = url_db.rsplit("/", 1)[1]
        return self.run("psql", "-h", str(self.dir), "-p", str(self.port), "-U", "postgres",
                        "-d", db, "-At", "-c", query)

    def stop(self):
        try:
            self.run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


_shared = None


def shared():
    """The PostgreSQL server of this process, started at the first call and stopped at exit."""
    global _shared
    if _shared is None:
        _shared = Postgres()
        atexit.register(_shared.stop)
    return _shared


def store_config(url, pool_size=4):
    """The `[store]` lines of a mailkeep configuration on the database `url`."""
    return f'backend = "postgres"\nurl = "{url}"\npool_size = {pool_size}\n'


def with_store(config_text, url, pool_size=4):
    """`config_text` with a `[store]` section on the database `url` (merged into a `[store]`
    section it already has)."""
    lines = store_config(url, pool_size)
    if "[store]\n" in config_text:
        return config_text.replace("[store]\n", "[store]\n" + lines, 1)
    return config_text + "\n[store]\n" + lines
