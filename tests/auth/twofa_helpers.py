"""Helpers for the two-factor and app-password tests: TOTP codes computed here (RFC 6238 with
hmac), the `2fa enable` exchange driven through stdin, and logins over IMAP and POP3."""

import base64
import hashlib
import hmac
import imaplib
import poplib
import re
import struct
import subprocess
import time
from urllib.parse import parse_qs, urlparse

from mkserver import BIN, Server

FAST = "[auth]\nfailure_delay_ms = 0\n"
POP3 = '[pop3]\nlisten = ["127.0.0.1:0"]\n'
RECOVERY = re.compile(r"^\s+([a-z]{5}-[a-z]{5}-[a-z]{5})$")


def pop3_server(extra_config=""):
    return Server(extra_config=FAST + POP3 + extra_config, wait_for=("pop3",))


def totp(secret_b32, t=None):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if t is None else t) // 30)
    h = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    o = h[-1] & 15
    return "%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)


def enable_2fa(server, name, code=None):
    """Run `mailkeep user 2fa enable NAME`, answer with the current code (or `code`); returns
    (completed process's stdout, stderr, returncode, secret, recovery codes)."""
    p = subprocess.Popen([BIN, "user", "2fa", "enable", name, "--config", str(server.config)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    uri = p.stdout.readline().strip()
    assert uri.startswith("otpauth://totp/"), uri
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    out, err = p.communicate((code or totp(secret)) + "\n", timeout=60)
    codes = [m.group(1) for m in map(RECOVERY.match, out.splitlines()) if m]
    return out, err, p.returncode, secret, codes


def imap_login(server, user, password):
    m = imaplib.IMAP4(*server.imap)
    try:
        m.login(user, password)
    except imaplib.IMAP4.error:
        m.shutdown()
        return None
    return m


def imap_ok(server, user, password):
    m = imap_login(server, user, password)
    if m is None:
        return False
    m.logout()
    return True


def pop3_login(server, user, password):
    p = poplib.POP3(*server.pop3, timeout=10)
    try:
        p.user(user)
        p.pass_(password)
    except poplib.error_proto:
        p.close()
        return None
    return p


def pop3_ok(server, user, password):
    p = pop3_login(server, user, password)
    if p is None:
        return False
    p.quit()
    return True


def add_app_password(server, name, label):
    r = server.cli("app-password", "add", name, label)
    assert r.returncode == 0, r.stderr
    password = r.stdout.strip()
    assert re.fullmatch(r"[a-z]{16}", password), password
    return password
