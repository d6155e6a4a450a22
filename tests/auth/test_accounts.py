"""`mailkeep user add/passwd` with the password policy and `--hash`, and `mailkeep user import
passwd-file`: Dovecot's hashes log in, and are replaced by argon2id at the first login."""

import imaplib
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scram_client import Imap, scram_login  # noqa: E402

FAST = "[auth]\nfailure_delay_ms = 0\n"

# `doveadm pw -s SCHEME -p pass` for each scheme Mailkeep accepts.
DOVECOT = {
    "argon2id": "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$cjZn6cAmRd+tstD+rPPQ5w$"
                "0PruEOZhLPYsxe/YqMskcoeSy8IRMwhwGtNujx4VybM",
    "argon2i": "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$JKvuSLwf+Q9F8hOuaP/lCw$"
               "fcX7koQ97eJD8/TKR+0vekN84XlNBnq/HFsDSZjkZe0",
    "sha512": "{SHA512-CRYPT}$6$J9DFhyW7GYcQdSHh$9aLMHpw1/cQssrtSwoEQpcefzR9an2XNlETeZXkL04wiUYv1"
              "uwVg7Wqgg2uQmQuxlQZuT8OXs4GMV3yvUGOIQ0",
    "sha256": "{SHA256-CRYPT}$5$gg3/Z4Dklw0L/DWJ$vIYtEzknkOSV8gy.t8QtvoihSnP7foBTjRyBl.dx9U/",
    "blf": "{BLF-CRYPT}$2y$05$gYCwjTRWWOIdear/UpXms.9zmMxSNULy/7zoC9HnUjFyDDneBhSoe",
    "ssha512": "{SSHA512}N8+SN+kv+2ol65Rx+1d9eO7j21XmUqfeC7gQzIUB/X+20maPfDUsv2MYMb11XUkf1H6Y"
               "nXNV1FXNmMH31iVrPl5/PFg=",
    "ssha256": "{SSHA256}hkxrGCYp/Fbrgm03miukLZzAvu/69TsnAmn10KaLmUrIWR5j",
    "scram": "{SCRAM-SHA-256}4096,mBQDANqeJfZrBCcJvIsBPQ==,YQocLOZ0Vii1xpDjbLNWHG+5Q6Hw9WIThny"
             "uEV4h08k=,dOWpAPOTLLNbe6OWZP6MrX10vJnpHFqyBBWXNEgXMT0=",
}


def login(server, user, password):
    m = imaplib.IMAP4(*server.imap)
    try:
        m.login(user, password)
        m.logout()
        return True
    except imaplib.IMAP4.error:
        return False


def stored_hash(server, user):
    db = sqlite3.connect(server.data / "index.sqlite3")
    try:
        return db.execute("SELECT password_hash FROM users WHERE name = ?", (user,)).fetchone()[0]
    finally:
        db.close()


def test_password_policy(make_server):
    server = make_server(users=())
    r = server.cli("user", "add", "carol", input="short\n")
    assert r.returncode != 0 and "too short: at least 10 characters" in r.stderr, r.stderr
    r = server.cli("user", "add", "carol", input="password123\n")
    assert r.returncode != 0 and "most common passwords" in r.stderr, r.stderr
    assert server.cli("user", "add", "carol", input="Tr0ub4dor&3-horse\n").returncode == 0
    r = server.cli("user", "passwd", "carol", input="qwertyuiop\n")
    assert r.returncode != 0 and "most common passwords" in r.stderr, r.stderr
    # The setting, and the escape hatch for tests.
    assert server.cli("user", "add", "dave", "--allow-weak-password", input="pw\n").returncode == 0
    assert login(server, "carol", "Tr0ub4dor&3-horse") and login(server, "dave", "pw")


def test_min_password_length_setting(make_server):
    server = make_server(users=(), extra_config="[auth]\nmin_password_length = 20\n")
    r = server.cli("user", "add", "carol", input="Tr0ub4dor&3-horse\n")
    assert r.returncode != 0 and "at least 20 characters" in r.stderr, r.stderr


def test_user_add_with_a_dovecot_hash(make_server):
    server = make_server(users=(), extra_config=FAST)
    for name, hash_ in DOVECOT.items():
        r = server.cli("user", "add", name, "--hash", hash_)
        assert r.returncode == 0, (name, r.stderr)
    r = server.cli("user", "add", "x", "--hash", "{MD5-CRYPT}$1$abc$def")
    assert r.returncode != 0 and "unknown password scheme {MD5-CRYPT}" in r.stderr, r.stderr
    r = server.cli("user", "add", "y", "--hash", "{SSHA256}")
    assert r.returncode != 0 and "malformed {SSHA256} hash" in r.stderr, r.stderr
    # {SCRAM-SHA-256} serves SCRAM as it is.
    conn = Imap(server.imap)
    assert scram_login(conn, "scram", "pass").ok
    conn.close()
    for name in DOVECOT:
        assert not login(server, name, "wrong"), name
        assert stored_hash(server, name) != "" and not (
            name != "argon2id" and stored_hash(server, name).startswith("$argon2id$")), name
        assert login(server, name, "pass"), name
        # Rehashed to argon2id at that login, with SCRAM keys beside it.
        assert stored_hash(server, name).startswith("$argon2id$"), name
        assert login(server, name, "pass"), name
        conn = Imap(server.imap)
        assert scram_login(conn, name, "pass").ok, name
        conn.close()
    # `passwd --hash` too.
    assert server.cli("user", "passwd", "blf", "--hash", DOVECOT["ssha256"]).returncode == 0
    assert stored_hash(server, "blf").startswith("{SSHA256}")
    assert login(server, "blf", "pass")


def test_import_passwd_file(make_server):
    server = make_server(users=("alice",), extra_config=FAST)
    f = server.dir / "passwd"
    f.write_text(
        "# Dovecot passwd-file\n"
        "\n"
        f"u1:{DOVECOT['sha512']}:1000:1000::/home/u1::userdb_quota_rule=*:storage=1G\n"
        f"u2@example.org:{DOVECOT['blf']}::::::\n"
        f"u3:{DOVECOT['scram']}\r\n"
        "u4:{MD5-CRYPT}$1$abc$def::::::\n"
        "u5:plaintext-without-scheme\n"
        "u6:\n"
        "bad name:{SSHA256}hkxrGCYp/Fbrgm03miukLZzAvu/69TsnAmn10KaLmUrIWR5j\n"
        f"alice:{DOVECOT['ssha256']}\n"
    )
    r = server.cli("user", "import", "passwd-file", str(f))
    assert r.returncode == 0, r.stderr
    assert "imported 3, updated 0, skipped 5" in r.stdout, r.stdout
    assert 'line 6: "u4" skipped: unknown password scheme {MD5-CRYPT}' in r.stderr, r.stderr
    assert 'line 7: "u5" skipped: the hash must start with {SCHEME}' in r.stderr, r.stderr
    assert 'line 8: "u6" skipped: no password hash' in r.stderr, r.stderr
    assert 'line 9: "bad name" skipped: invalid user name' in r.stderr, r.stderr
    assert 'line 10: "alice" skipped: the account exists' in r.stderr, r.stderr
    for u in ("u1", "u2@example.org", "u3"):
        assert login(server, u, "pass"), u
    assert login(server, "alice", "pass")
    # --update replaces existing accounts' hashes.
    f.write_text(f"alice:{DOVECOT['ssha256'].replace('hkx', 'AAA')}\n")
    r = server.cli("user", "import", "passwd-file", str(f), "--update")
    assert "imported 0, updated 1, skipped 0" in r.stdout, r.stdout + r.stderr
    assert not login(server, "alice", "pass")
