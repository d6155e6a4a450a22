"""Hostile-client tests: fixtures that run the real `mailkeep` binary (see tests/lib/mkserver.py)."""

import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from mkserver import (  # noqa: E402,F401
    BIN, PASSWORD, ROOT, Server, assert_responsive, server_fixtures,
)


server, make_server = server_fixtures(Server)


class LoggedIn:
    """A raw IMAP connection logged in as alice: tagged commands, the untagged lines returned."""

    def __init__(self, server, timeout=120):
        self.sock = socket.create_connection(server.imap, timeout=timeout)
        self.f = self.sock.makefile("rb")
        assert self.f.readline().startswith(b"* OK")
        self.n = 0
        self.cmd(f"LOGIN alice {PASSWORD}")

    def send(self, data, ok=True):
        """Send `data` under a new tag; with `ok`, the tagged answer must be OK."""
        self.n += 1
        tag = f"t{self.n}".encode()
        self.sock.sendall(tag + b" " + data + b"\r\n")
        untagged = []
        while True:
            got = self.f.readline()
            assert got, "connection closed"
            if got.startswith(tag + b" "):
                if ok:
                    assert got.startswith(tag + b" OK"), got
                return untagged
            untagged.append(got)

    def cmd(self, line, ok=True):
        return self.send(line.encode(), ok)

    def append(self, box, body):
        self.send(f"APPEND {box} {{{len(body)}+}}\r\n".encode() + body)
