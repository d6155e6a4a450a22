"""Migration rate from Dovecot (not a test; run by hand, figures in docs/benchmarks.md):

    cargo build --release --bin mailkeep
    cd tests/migrate && MAILKEEP_BIN=../../target/release/mailkeep python3 bench.py

10,000 messages in 7 folders (tests/migrate/test_dovecot.py's set) from a Dovecot on loopback:
the time of a bare client that only reads every body (`UID FETCH 1:* BODY.PEEK[]` per folder,
nothing stored: what the source can give), then `mailkeep migrate` with its defaults (200 UIDs
per UID FETCH, 4 in flight) and with one command in flight, each into a fresh data directory,
and a second run with nothing new.
"""

import shutil
import socket
import time

from conftest import PASSWORD, Dovecot, Server, migrate
from test_dovecot import FOLDERS, fill


def bare_fetch(port):
    """Seconds to read every message of every folder with one plain connection."""
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb", buffering=1 << 20)
    f.readline()
    start = time.monotonic()
    total = 0

    def run(tag, cmd):
        nonlocal total
        s.sendall(f"{tag} {cmd}\r\n".encode())
        while True:
            line = f.readline()
            if line.endswith(b"}\r\n"):
                n = int(line[line.rindex(b"{") + 1:-3])
                total += len(f.read(n))
                continue
            if line.startswith(tag.encode() + b" "):
                assert b" OK" in line, line
                return

    run("l", f"LOGIN alice {PASSWORD}")
    for i, folder in enumerate(FOLDERS):
        run(f"s{i}", f'EXAMINE "{folder}"')
        run(f"f{i}", "UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    took = time.monotonic() - start
    s.close()
    return took, total


def main():
    dv = Dovecot(("alice",))
    try:
        fill(dv, "alice", FOLDERS)
        dv.start()
        bare_fetch(dv.port)  # warm Dovecot's indexes and the page cache
        took, total = bare_fetch(dv.port)
        print(f"bare FETCH of every body: {took:.2f} s, {total / 1e6:.1f} MB, "
              f"{10000 / took:.0f} msg/s")
        src = ("--from", f"imap://127.0.0.1:{dv.port}", "--user", "alice", "--quiet")
        for label, extra in (("migrate (200 UIDs x 4 in flight)", ()),
                             ("migrate (200 UIDs x 1 in flight)", ("--in-flight", "1"))):
            target = Server(users=("alice",))
            try:
                target.stop()
                r = migrate(target, *src, *extra)
                assert r.returncode == 0, r
                print(f"{label}: {r.seconds:.2f} s, {10000 / r.seconds:.0f} msg/s, "
                      f"peak RSS {r.maxrss_kib / 1024:.0f} MiB")
                r = migrate(target, *src)
                assert "0 new messages" in r.stdout, r
                print(f"  second run, nothing new: {r.seconds:.2f} s")
                du = sum(p.stat().st_size for p in target.data.rglob("*") if p.is_file())
                print(f"  data directory: {du / 1e6:.1f} MB")
            finally:
                target.cleanup()
    finally:
        dv.cleanup()
        shutil.rmtree(dv.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
