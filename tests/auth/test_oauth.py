"""AUTHENTICATE OAUTHBEARER (RFC 7628) and XOAUTH2 with JWT access tokens of the issuer in
`[auth.oauth]`: tokens are RS256-signed here with a test key (openssl), the JWKS file written
from its public half; a refused token gets the RFC 7628 error JSON as a challenge, the client
answers AQ== and gets NO [AUTHENTICATIONFAILED]."""

import base64
import imaplib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mkserver import PASSWORD, Server  # noqa: E402
from twofa_helpers import FAST, POP3, enable_2fa, imap_ok  # noqa: E402

ISS = "https://id.example.org"
AUD = "mailkeep-imap"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    """A test identity provider: an RSA key made by openssl, its JWKS, and signed tokens."""

    def __init__(self, directory, kid="k1"):
        self.kid = kid
        self.key = directory / f"{kid}.pem"
        subprocess.run(["openssl", "genrsa", "-out", str(self.key), "2048"], check=True,
                       capture_output=True)
        mod = subprocess.run(["openssl", "rsa", "-in", str(self.key), "-noout", "-modulus"],
                             check=True, capture_output=True, text=True).stdout
        n = bytes.fromhex(mod.strip().split("=", 1)[1])
        self.jwk = {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64u(n),
                    "e": "AQAB"}

    def token(self, alg="RS256", **claims):
        body = {"iss": ISS, "aud": AUD, "exp": int(time.time()) + 600,
                "email": "alice@example.org"}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        header = {"alg": alg, "typ": "JWT", "kid": self.kid}
        signing_input = (b64u(json.dumps(header).encode()) + "." +
                         b64u(json.dumps(body).encode())).encode()
        if alg == "none":
            return signing_input.decode() + "."
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                             input=signing_input, check=True, capture_output=True).stdout
        return signing_input.decode() + "." + b64u(sig)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("oauth")
    issuer, stranger = Issuer(d, "k1"), Issuer(d, "k2")
    jwks = d / "jwks.json"
    jwks.write_text(json.dumps({"keys": [issuer.jwk]}))
    s = Server(extra_config=FAST + POP3 + f'[auth.oauth]\njwks_file = "{jwks}"\n'
                                          f'issuer = "{ISS}"\naudience = "{AUD}"\n',
               wait_for=("pop3",))
    assert s.cli("domain", "add", "example.org").returncode == 0
    yield s, issuer, stranger
    s.cleanup()


def oauthbearer(token, user="alice@example.org"):
    return f"n,a={user},\x01host=127.0.0.1\x01port=143\x01auth=Bearer {token}\x01\x01".encode()


def xoauth2(token, user="alice@example.org"):
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def authenticate(server, mechanism, message):
    m = imaplib.IMAP4(*server.imap)
    try:
        typ, _ = m.authenticate(mechanism, lambda challenge: message if not challenge else b"\x01")
        m.logout()
        return typ == "OK"
    except imaplib.IMAP4.error as e:
        assert "AUTHENTICATIONFAILED" in str(e), e
        return False


def test_advertised_only_when_configured(setup, make_server):
    s, _, _ = setup
    m = imaplib.IMAP4(*s.imap)
    assert "AUTH=OAUTHBEARER" in m.capabilities and "AUTH=XOAUTH2" in m.capabilities
    m.logout()
    plain = make_server(extra_config=FAST)
    m = imaplib.IMAP4(*plain.imap)
    assert "AUTH=OAUTHBEARER" not in m.capabilities
    typ, _ = m.capability()
    m.logout()


def test_oauthbearer_and_xoauth2_log_in(setup):
    s, issuer, _ = setup
    assert authenticate(s, "OAUTHBEARER", oauthbearer(issuer.token()))
    assert authenticate(s, "XOAUTH2", xoauth2(issuer.token()))
    # The account by its own name, and no authzid at all.
    assert authenticate(s, "OAUTHBEARER", oauthbearer(issuer.token(email="bob"), user="bob"))
    t = issuer.token(email="bob")
    assert authenticate(s, "OAUTHBEARER", f"n,,\x01auth=Bearer {t}\x01\x01".encode())


@pytest.mark.parametrize("claims", [
    {"iss": "https://evil.example"},
    {"aud": "someone-else"},
    {"exp": 1000},
    {"exp": None},
    {"email": "mallory@example.org"},
    {"email": "alice@elsewhere.example"},
], ids=["issuer", "audience", "expired", "no-exp", "unknown-account", "foreign-domain"])
def test_refused_tokens(setup, claims):
    s, issuer, _ = setup
    assert not authenticate(s, "OAUTHBEARER", oauthbearer(issuer.token(**claims)))


def test_bad_signature_alg_none_and_other_user(setup):
    s, issuer, stranger = setup
    # Signed by a key not in the JWKS, under the known kid.
    stranger.kid = "k1"
    assert not authenticate(s, "OAUTHBEARER", oauthbearer(stranger.token()))
    assert not authenticate(s, "XOAUTH2", xoauth2(issuer.token(alg="none")))
    # alice's token presented for bob.
    assert not authenticate(s, "XOAUTH2", xoauth2(issuer.token(), user="bob"))


def test_error_json_exchange(setup):
    s, issuer, _ = setup
    c = socket.create_connection(s.imap, timeout=10)
    f = c.makefile("rb")
    f.readline()
    msg = base64.b64encode(oauthbearer(issuer.token(exp=1000))).decode()
    c.sendall(f"A1 AUTHENTICATE OAUTHBEARER {msg}\r\n".encode())
    line = f.readline().decode()
    assert line.startswith("+ "), line
    err = json.loads(base64.b64decode(line[2:]))
    assert err["status"] == "invalid_token" and err["schemes"] == "bearer"
    c.sendall(b"AQ==\r\n")
    line = f.readline().decode()
    assert line.startswith("A1 NO [AUTHENTICATIONFAILED]"), line
    c.sendall(b"A2 LOGOUT\r\n")
    c.close()


def test_oauth_works_with_two_factor(setup):
    s, issuer, _ = setup
    assert enable_2fa(s, "bob")[2] == 0
    assert not imap_ok(s, "bob", PASSWORD)
    assert authenticate(s, "XOAUTH2", xoauth2(issuer.token(email="bob"), user="bob"))


def pop3_auth(server, mechanism, message, answer=b"\x01"):
    """AUTH with an initial response over POP3; returns the lines the server sent."""
    c = socket.create_connection(server.pop3, timeout=10)
    f = c.makefile("rb")
    lines = [f.readline().decode()]
    c.sendall(f"AUTH {mechanism} {base64.b64encode(message).decode()}\r\n".encode())
    lines.append(f.readline().decode())
    if lines[-1].startswith("+ "):
        c.sendall(base64.b64encode(answer) + b"\r\n")
        lines.append(f.readline().decode())
    c.sendall(b"QUIT\r\n")
    c.close()
    return lines


def test_pop3(setup):
    s, issuer, _ = setup
    c = socket.create_connection(s.pop3, timeout=10)
    f = c.makefile("rb")
    f.readline()
    c.sendall(b"CAPA\r\n")
    capa = []
    while not capa or capa[-1] != ".":
        capa.append(f.readline().decode().strip())
    c.close()
    assert any(x.startswith("SASL ") and x.endswith(" OAUTHBEARER XOAUTH2") for x in capa), capa
    lines = pop3_auth(s, "OAUTHBEARER", oauthbearer(issuer.token()))
    assert lines[-1].startswith("+OK"), lines
    lines = pop3_auth(s, "XOAUTH2", xoauth2(issuer.token(email="bob"), user="bob"))
    assert lines[-1].startswith("+OK"), lines
    lines = pop3_auth(s, "OAUTHBEARER", oauthbearer(issuer.token(aud="other")))
    err = json.loads(base64.b64decode(lines[1][2:]))
    assert err["status"] == "invalid_token"
    assert lines[2].startswith("-ERR [AUTH]"), lines
