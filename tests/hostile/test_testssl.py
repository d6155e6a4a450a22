"""testssl.sh (Debian's `testssl.sh` package) against the implicit-TLS listener and the STARTTLS
one: only TLS 1.2 and 1.3 offered, no weak cipher category, no vulnerability flagged. The summary
of each run is printed (`pytest -s`)."""

import json
import shutil
import subprocess

import pytest

from conftest import assert_responsive

TESTSSL = shutil.which("testssl") or shutil.which("testssl.sh")

# Findings that mean "not good": testssl's severities above INFO/OK.
BAD = {"LOW", "MEDIUM", "HIGH", "CRITICAL"}


def scan(tmp_path, name, *target):
    out = tmp_path / f"{name}.json"
    r = subprocess.run(
        [TESTSSL, "--quiet", "--color", "0", "--warnings", "batch", "--openssl-timeout", "5",
         "-p", "-s", "-U", "--jsonfile", str(out), *target],
        capture_output=True, text=True, timeout=300,
    )
    findings = json.loads(out.read_text())
    summary = "\n".join(
        f"  {f['id']:<24} {f['severity']:<6} {f['finding']}" for f in findings
    )
    print(f"testssl {name} (exit {r.returncode}):\n{summary}")
    return {f["id"]: f for f in findings}


@pytest.mark.skipif(TESTSSL is None, reason="testssl.sh is not installed")
@pytest.mark.parametrize("listener", ["imaps", "starttls"])
def test_testssl_finds_nothing(server, tmp_path, listener):
    if listener == "imaps":
        host, port = server.imaps
        found = scan(tmp_path, listener, f"{host}:{port}")
    else:
        host, port = server.imap
        found = scan(tmp_path, listener, "-t", "imap", f"{host}:{port}")
    for proto in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert found[proto]["finding"] == "not offered", found[proto]
    assert found["TLS1_2"]["finding"].startswith("offered"), found["TLS1_2"]
    assert found["TLS1_3"]["finding"].startswith("offered"), found["TLS1_3"]
    for cat in ("cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW",
                "cipherlist_3DES_IDEA", "cipherlist_AVERAGE"):
        assert found[cat]["finding"] == "not offered", found[cat]
    bad = [f for f in found.values() if f["severity"] in BAD]
    assert not bad, bad
    # Scan errors (a listener testssl could not talk to) would show as WARN/FATAL.
    assert not [f for f in found.values() if f["severity"] in ("WARN", "FATAL")]
    assert_responsive(server)
