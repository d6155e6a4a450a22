"""An independent SCRAM-SHA-256 / SCRAM-SHA-1 client (RFC 5802 §3, RFC 7677) over a raw IMAP
socket.

Python's imaplib has no SCRAM, so this is written from the RFC with hashlib/hmac only; it
checks the server's signature (v=) itself. Channel binding (-PLUS) needs the TLS exporter,
which Python's ssl module does not offer: -PLUS is tested with GNU SASL's `gsasl` instead.
"""

import base64
import hashlib
import hmac
import os
import socket


def b64(data):
    return base64.b64encode(data).decode()


class ScramResult:
    def __init__(self, tagged, server_first="", server_final=""):
        self.tagged = tagged
        self.server_first = server_first
        self.server_final = server_final

    @property
    def ok(self):
        return self.tagged.startswith("A OK")

    @property
    def salt(self):
        return dict(kv.split("=", 1) for kv in self.server_first.split(","))["s"]


class Imap:
    """A line-level IMAP connection."""

    def __init__(self, addr, timeout=10):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.f = self.sock.makefile("rb")
        self.greeting = self.line()

    def line(self):
        return self.f.readline().decode().rstrip("\r\n")

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def command(self, text, tag="A"):
        self.send(f"{tag} {text}")
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(f"{tag} ") or not line:
                return lines

    def starttls(self, context):
        assert self.command("STARTTLS", tag="T")[-1].startswith("T OK")
        self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
        self.f = self.sock.makefile("rb")

    def close(self):
        self.sock.close()


def digest_of(mechanism):
    """The hashlib name of a SCRAM mechanism's hash."""
    return "sha1" if mechanism.upper().startswith("SCRAM-SHA-1") else "sha256"


def scram_login(conn, user, password, gs2="n,,", mechanism="SCRAM-SHA-256"):
    """One AUTHENTICATE SCRAM exchange with SASL-IR; returns a ScramResult."""
    h = digest_of(mechanism)
    cnonce = b64(os.urandom(18))
    bare = f"n={user.replace('=', '=3D').replace(',', '=2C')},r={cnonce}"
    conn.send(f"A AUTHENTICATE {mechanism} {b64((gs2 + bare).encode())}")
    line = conn.line()
    if not line.startswith("+ "):
        return ScramResult(line)
    server_first = base64.b64decode(line[2:]).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    nonce, salt, iters = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
    assert nonce.startswith(cnonce) and len(nonce) > len(cnonce)
    salted = hashlib.pbkdf2_hmac(h, password.encode(), salt, iters)
    client_key = hmac.new(salted, b"Client Key", h).digest()
    stored_key = hashlib.new(h, client_key).digest()
    without_proof = f"c={b64(gs2.encode())},r={nonce}"
    auth_message = f"{bare},{server_first},{without_proof}".encode()
    signature = hmac.new(stored_key, auth_message, h).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    conn.send(b64(f"{without_proof},p={b64(proof)}".encode()))
    line = conn.line()
    if not line.startswith("+ "):
        # A failure is the tagged NO at once (no e= challenge), BYE first if it was the last.
        lines = [line]
        while not lines[-1].startswith("A ") and lines[-1]:
            lines.append(conn.line())
        return ScramResult(lines[-1], server_first)
    server_final = base64.b64decode(line[2:]).decode()
    server_key = hmac.new(salted, b"Server Key", h).digest()
    want = b64(hmac.new(server_key, auth_message, h).digest())
    assert server_final == f"v={want}", "the server's signature is wrong"
    conn.send("")
    lines = [conn.line()]
    while not lines[-1].startswith("A ") and lines[-1]:
        lines.append(conn.line())
    return ScramResult(lines[-1], server_first, server_final)


def pop3_scram_login(addr, user, password, mechanism="SCRAM-SHA-256"):
    """AUTH SCRAM-SHA-256 (or `mechanism`) over POP3 (RFC 5034); returns the final status line."""
    h = digest_of(mechanism)
    conn = Imap(addr)  # line-level: the greeting is `+OK ...`
    try:
        assert conn.greeting.startswith("+OK"), conn.greeting
        cnonce = b64(os.urandom(18))
        bare = f"n={user},r={cnonce}"
        conn.send(f"AUTH {mechanism} {b64(('n,,' + bare).encode())}")
        line = conn.line()
        if not line.startswith("+ "):
            return line
        server_first = base64.b64decode(line[2:]).decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salted = hashlib.pbkdf2_hmac(h, password.encode(), base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", h).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{bare},{server_first},{without_proof}".encode()
        signature = hmac.new(hashlib.new(h, client_key).digest(), auth_message, h).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        conn.send(b64(f"{without_proof},p={b64(proof)}".encode()))
        line = conn.line()
        if not line.startswith("+ "):
            return line
        server_key = hmac.new(salted, b"Server Key", h).digest()
        want = "v=" + b64(hmac.new(server_key, auth_message, h).digest())
        assert base64.b64decode(line[2:]).decode() == want, "the server's signature is wrong"
        conn.send("")
        return conn.line()
    finally:
        conn.close()
