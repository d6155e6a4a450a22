#!/usr/bin/env bash
# Runs every test of Mailkeep: formatting, lints, unit/store/session/transcript tests, the real
# clients (imaplib, mbsync, offlineimap3, curl), the crash test and short fuzz runs.
# On a fresh Debian machine with Rust and Python 3 it installs what the tests need first.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v mbsync >/dev/null || need_apt+=(isync)
command -v offlineimap >/dev/null || need_apt+=(offlineimap3)
command -v curl >/dev/null || need_apt+=(curl)
command -v fetchmail >/dev/null || need_apt+=(fetchmail)
command -v getmail >/dev/null || need_apt+=(getmail6)
# Postfix for tests/lmtp/test_postfix.py, which starts its own instance in a temporary directory.
[ -x /usr/sbin/postfix ] || need_apt+=(postfix)
# fail2ban-regex for tests/hostile/test_throttle.py (the filter in docs/fail2ban/ on real log lines).
command -v fail2ban-regex >/dev/null || need_apt+=(fail2ban)
# SCRAM clients for tests/auth: GNU SASL (SCRAM-SHA-256-PLUS) and Cyrus SASL's SCRAM plugin (mbsync).
command -v gsasl >/dev/null || need_apt+=(gsasl)
dpkg -s libsasl2-modules >/dev/null 2>&1 || need_apt+=(libsasl2-modules)
# openssl for tests/auth/test_oauth.py: RS256 tokens signed by a test issuer's key.
command -v openssl >/dev/null || need_apt+=(openssl)
# testssl.sh for tests/hostile/test_testssl.py (both TLS listeners scanned).
command -v testssl >/dev/null || need_apt+=(testssl.sh)
# PostgreSQL for the postgres store's tests (crates/store/tests/conformance_postgres.rs,
# tests/postgres), which start their own throwaway server with initdb in a temporary directory.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# Dovecot for tests/migrate (the source of `mailkeep migrate`, started unprivileged per test).
[ -x /usr/sbin/dovecot ] || need_apt+=(dovecot-imapd)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  # Install Postfix without configuring or starting a system instance.
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
python3 -c 'import pytest' 2>/dev/null || python3 -m pip install -q pytest
# A local S3-compatible server (moto) for tests/postgres/test_bodies.py's bodies in S3.
python3 -c 'import moto, boto3' 2>/dev/null || python3 -m pip install -q 'moto[server]' boto3

echo "== no machine paths in the repository"
# Files must name ../shared (or better the repository's own copies), never a path of one machine.
if git rev-parse --git-dir >/dev/null 2>&1 && git grep -nI -e "/wor""k/shared" -e "/wor""k/main"; then
  echo "tracked files name an absolute path of one machine (above)"; exit 1
fi
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --workspace --quiet
cargo build --quiet --bin mailkeep
fuzz_build=""
if [ "${MAILKEEP_SKIP_FUZZ:-}" != 1 ] && [ -x scripts/fuzz-short.sh ]; then
  # The fuzz targets' build (a sanitizer build of most of the workspace, the longest step)
  # runs at the lowest priority while the client tests below mostly wait on sockets and disks.
  echo "== fuzz targets: building in the background (nice 19)"
  fuzz_log=$(mktemp)
  setsid nice -n 19 scripts/fuzz-short.sh --build-only >"$fuzz_log" 2>&1 &
  fuzz_build=$!
  trap '[ -n "$fuzz_build" ] && kill -- "-$fuzz_build" 2>/dev/null; true' EXIT
fi
echo "== real clients (pytest)"
python3 -m pytest -q tests/clients
echo "== authentication: SCRAM, imported hashes, password policy (pytest: gsasl, mbsync)"
python3 -m pytest -q tests/auth
echo "== hostile clients (pytest)"
python3 -m pytest -q tests/hostile
echo "== POP3 (pytest: poplib, curl, fetchmail, getmail6)"
python3 -m pytest -q tests/pop3
echo "== LMTP delivery, with a real Postfix (pytest)"
python3 -m pytest -q tests/lmtp
echo "== backup, restore, upgrades of older data directories, config check (pytest)"
python3 -m pytest -q tests/backup
echo "== migration from another IMAP server: a real Dovecot and a second Mailkeep (pytest)"
python3 -m pytest -q tests/migrate
echo "== import and export: Maildir (written by a real doveadm) and mbox, round trip of the corpus (pytest)"
python3 -m pytest -q tests/transfer
echo "== PostgreSQL store: two mailkeep nodes on one database (pytest)"
python3 -m pytest -q tests/postgres
echo "== the client tests again with the server on PostgreSQL (one database per server)"
MAILKEEP_TEST_STORE=postgres python3 -m pytest -q tests/clients
if [ -n "$fuzz_build" ]; then
  echo "== fuzz (short runs)"
  if ! wait "$fuzz_build"; then
    fuzz_build=""
    cat "$fuzz_log"; echo "building the fuzz targets failed"; exit 1
  fi
  fuzz_build=""
  rm -f "$fuzz_log"
  scripts/fuzz-short.sh
fi
