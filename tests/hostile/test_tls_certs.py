"""Several TLS certificates chosen by SNI ([[tls.cert]]), and certificates reloaded on SIGHUP
without dropping open sessions (issue 9, "TLS")."""

import hashlib
import imaplib
import signal
import socket
import ssl
import subprocess
import time

from conftest import PASSWORD


def make_cert(dir, stem, cn):
    """A self-signed certificate made by openssl; returns (cert path, key path, DER sha256)."""
    cert, key = dir / f"{stem}.crt", dir / f"{stem}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "30", "-subj", f"/CN={cn}"],
                   check=True, capture_output=True)
    return cert, key, der_sha256(cert.read_text())


def der_sha256(pem):
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def presented(server, name):
    """The sha256 of the certificate the implicit-TLS listener presents for SNI `name`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(server.imaps, timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def sni_config(entries):
    return "".join(f'[[tls.cert]]\nnames = {names!r}\ncert = "{c}"\nkey = "{k}"\n'
                   .replace("'", '"') for names, c, k in entries)


def test_certificate_is_chosen_by_sni(make_server, tmp_path):
    a_cert, a_key, a = make_cert(tmp_path, "a", "mail.example.com")
    b_cert, b_key, b = make_cert(tmp_path, "b", "imap.example.org")
    server = make_server(extra_config=sni_config([
        (["mail.example.com"], a_cert, a_key),
        (["*.example.org"], b_cert, b_key),
    ]))
    assert presented(server, "mail.example.com") == a
    assert presented(server, "MAIL.Example.COM") == a
    assert presented(server, "imap.example.org") == b
    # Unknown names and clients without SNI get the first entry.
    assert presented(server, "other.test") == a
    assert presented(server, None) == a
    # STARTTLS chooses the same way (imaplib sends no SNI for an IP address: the default).
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    imap = imaplib.IMAP4(*server.imap)
    imap.starttls(ctx)
    assert hashlib.sha256(imap.sock.getpeercert(binary_form=True)).hexdigest() == a
    imap.logout()


def test_sighup_reloads_certificates_and_keeps_sessions(make_server, tmp_path):
    cert, key, old = make_cert(tmp_path, "a", "mail.example.com")
    server = make_server(extra_config=sni_config([(["mail.example.com"], cert, key)]))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    session = imaplib.IMAP4_SSL(*server.imaps, ssl_context=ctx)
    session.login("alice", PASSWORD)
    session.select("INBOX")
    assert presented(server, "mail.example.com") == old

    # Renewed files, then SIGHUP: new handshakes get the new certificate.
    new_cert, new_key, new = make_cert(tmp_path, "renewed", "mail.example.com")
    cert.write_bytes(new_cert.read_bytes())
    key.write_bytes(new_key.read_bytes())
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while presented(server, "mail.example.com") != new and time.time() < deadline:
        time.sleep(0.05)
    assert presented(server, "mail.example.com") == new
    # The session opened before goes on.
    assert session.noop()[0] == "OK"
    assert server.proc.poll() is None

    # A broken file: the reload fails, is logged, and the certificate in use stays.
    key.write_text("not a key\n")
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    log = server.dir / "server.log"
    while "not reloaded" not in log.read_text() and time.time() < deadline:
        time.sleep(0.05)
    assert "TLS certificates not reloaded" in log.read_text()
    assert presented(server, "mail.example.com") == new
    assert session.noop()[0] == "OK"
    session.logout()
