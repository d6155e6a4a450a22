"""`[log] audit_file`: one key=value line per login success, failure and block (the fail2ban
format of the normal log) and per admin change made with the CLI, naming the OS user."""

import getpass
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mkserver import PASSWORD, Server  # noqa: E402
from twofa_helpers import FAST, add_app_password, enable_2fa, imap_ok  # noqa: E402


def wait_for(path, pattern, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = path.read_text() if path.exists() else ""
        if re.search(pattern, text, re.M):
            return text
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not in {path}:\n{text}")


def test_audit_file_has_logins_and_admin_changes(tmp_path):
    audit = tmp_path / "audit.log"
    # Loopback is throttled here so that a block happens and is logged.
    extra = (FAST + "throttle_ip_failures = 3\ntrusted_networks = []\n"
             f'[log]\naudit_file = "{audit}"\n')
    s = Server(extra_config=extra)
    try:
        assert "event=admin_change action=user_add" in audit.read_text(), \
            "user add before the server started"
        assert imap_ok(s, "alice", PASSWORD)
        for _ in range(4):
            assert not imap_ok(s, "bob", "wrong")
        assert s.cli("quota", "set", "alice", "--storage", "10M").returncode == 0
        assert s.cli("domain", "add", "example.org").returncode == 0
        assert s.cli("alias", "add", "info@example.org", "alice").returncode == 0
        assert enable_2fa(s, "alice")[2] == 0
        add_app_password(s, "alice", "Phone")
        assert s.cli("app-password", "revoke", "alice", "Phone").returncode == 0
        r = s.cli("user", "passwd", "bob", "--allow-weak-password", input="another\n")
        assert r.returncode == 0, r.stderr
        assert s.cli("user", "del", "bob").returncode == 0
        text = wait_for(audit, r"event=auth_blocked")
        assert re.search(r'event=auth_success proto=imap ip=127\.0\.0\.1 user="alice"', text)
        assert re.search(r'event=auth_failure proto=imap ip=127\.0\.0\.1 user="bob" '
                         r'reason=password', text)
        me = os.environ.get("USER") or os.environ.get("LOGNAME") or getpass.getuser()
        for action in ["user_add", "quota_set", "domain_add", "alias_add", "2fa_enroll",
                       "2fa_enable", "app_password_add", "app_password_revoke", "user_passwd",
                       "user_del"]:
            assert re.search(rf"event=admin_change action={action} .*by=\"{re.escape(me)}\(uid \d+",
                             text), f"{action} missing:\n{text}"
        # Nothing but audit lines (no listener or debug lines).
        assert "listening" not in text
        # The normal log has the login lines too (fail2ban reads it).
        assert "event=auth_failure" in (s.dir / "server.log").read_text()
    finally:
        s.cleanup()


def test_without_audit_file_cli_changes_go_to_stderr(make_server):
    s = make_server(extra_config=FAST)
    r = s.cli("domain", "add", "example.net")
    assert r.returncode == 0
    assert "event=admin_change action=domain_add" in r.stderr
    assert "mailkeep::audit" in r.stderr
