"""Connections per account ([limits] max_connections_per_user, max_connections_per_user_ip):
a login beyond the limit gets NO [LIMIT] (logged), other accounts are not affected, and a place
is given back when a session ends."""

import imaplib
import socket
import time

import pytest

from conftest import PASSWORD


class FromAddress(imaplib.IMAP4):
    """imaplib from another loopback source address."""

    def __init__(self, addr, source):
        self.source = source
        super().__init__(*addr)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.source, 0))


def login(server, user="alice"):
    c = imaplib.IMAP4(*server.imap)
    c.login(user, PASSWORD)
    return c


def test_logins_beyond_the_per_address_limit_are_refused(make_server):
    server = make_server(extra_config="[limits]\nmax_connections_per_user_ip = 3\n")
    held = [login(server) for _ in range(3)]
    extra = imaplib.IMAP4(*server.imap)
    with pytest.raises(imaplib.IMAP4.error, match=r"\[LIMIT\].*max_connections_per_user_ip=3"):
        extra.login("alice", PASSWORD)
    # The refused connection is still usable (not dropped mid-command), and not logged in.
    assert extra.noop()[0] == "OK"
    # Another account is not affected.
    login(server, "bob").logout()
    # A session that ends gives its place back.
    held.pop().logout()
    deadline = time.time() + 5
    while True:
        try:
            extra.login("alice", PASSWORD)
            break
        except imaplib.IMAP4.error:
            assert time.time() < deadline, "place not given back"
            time.sleep(0.1)
    extra.logout()
    for c in held:
        c.logout()
    assert "event=connection_limit" in (server.dir / "server.log").read_text()


def test_per_account_limit_counts_every_address(make_server):
    server = make_server(extra_config="[limits]\nmax_connections_per_user = 2\n")
    a = login(server)
    # From another loopback address: the account's total still counts.
    b = FromAddress(server.imap, "127.0.0.2")
    b.login("alice", PASSWORD)
    c = imaplib.IMAP4(*server.imap)
    with pytest.raises(imaplib.IMAP4.error, match=r"\[LIMIT\].*max_connections_per_user=2"):
        c.login("alice", PASSWORD)
    for x in (a, b):
        x.logout()
    c.logout()
