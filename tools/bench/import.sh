#!/bin/sh
# Import speed: `mailkeep import maildir` against `doveadm import` of the same Maildir, same run.
#
#   tools/bench/import.sh [MESSAGES] [SIZE]      (defaults 20000 messages of 5000 bytes)
#
# Needs a release build (cargo build --release --bin mailkeep; MAILKEEP_BIN overrides) and,
# for the Dovecot side, doveadm (Debian package dovecot-core). Run as root, Dovecot writes as
# `nobody` (it refuses root); SKIP_DOVECOT=1 leaves it out. Each message is distinct (the
# store keeps identical bodies once).
set -eu
N=${1:-20000}
SIZE=${2:-5000}
ROOT_DIR=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${MAILKEEP_BIN:-$ROOT_DIR/target/release/mailkeep}
W=$(mktemp -d /tmp/mailkeep-import-bench.XXXXXX)
chmod 755 "$W"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$W"' EXIT

python3 - "$W/src" "$N" "$SIZE" <<'PY'
# Like mailkeep-bench's five_kb(): unique Received/Message-ID headers, a body of common words.
import os, random, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
words = ("the meeting project report budget schedule review please attached update team client "
         "deadline quarter invoice server release feature customer support thanks regards tomorrow "
         "morning afternoon discussion proposal contract agreement delivery shipment order payment "
         "account password security network database backup migration performance latency memory "
         "storage mailbox message calendar conference travel hotel flight lunch dinner weekend "
         "holiday office building parking coffee question answer problem solution issue ticket "
         "priority urgent important note draft final version document spreadsheet presentation "
         "slides summary analysis results numbers growth sales marketing product design test "
         "quality process training hiring candidate").split()
names = "alice bob carol dave erin frank grace heidi ivan judy".split()
rnd = random.Random(1)
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(root, sub), exist_ok=True)
for i in range(n):
    subject = " ".join(rnd.choice(words) for _ in range(3 + rnd.randrange(6)))
    head = (f"Return-Path: <bounce@example.com>\n"
            f"Received: from mx{rnd.randrange(9)}.example.com (mx.example.com [192.0.2.{rnd.randrange(250)}])\n"
            f"\tby mail.test with ESMTPS id {rnd.getrandbits(64):x}; Mon, 4 Mar 2024 10:00:00 +0000\n"
            f"From: {rnd.choice(names).title()} <{rnd.choice(names)}@example.org>\n"
            f"To: {rnd.choice(names)}@example.com\nSubject: {subject}\n"
            f"Date: Mon, 4 Mar 2024 10:00:00 +0000\n"
            f"Message-ID: <{rnd.getrandbits(64):x}.{i}@example.com>\nMIME-Version: 1.0\n"
            f"Content-Type: text/plain; charset=utf-8\n\n")
    body = []
    length = len(head)
    while length < size:
        line = " ".join(rnd.choice(words) for _ in range(12)) + "\n"
        body.append(line)
        length += len(line)
    data = (head + "".join(body)).encode()[:size]
    name = f"{1700000000 + i}.M{i}P1.bench,S={len(data)}:2,S"
    with open(os.path.join(root, "cur", name), "wb") as f:
        f.write(data)
PY
chmod -R a+rX "$W/src"

echo "== $N messages of $SIZE bytes"
mkdir -p "$W/mk"
echo benchpass | "$BIN" user add bench --allow-weak-password --data-dir "$W/mk/data" >/dev/null
sync
start=$(date +%s.%N)
"$BIN" import maildir "$W/src" --user bench --data-dir "$W/mk/data" 2>"$W/mk/import.log"
end=$(date +%s.%N)
tail -1 "$W/mk/import.log"
mk=$(echo "$end - $start" | bc)
echo "mailkeep import maildir: $mk s, $(echo "$N / $mk" | bc) msg/s"

if [ -z "${SKIP_DOVECOT:-}" ] && command -v doveadm >/dev/null; then
    # Dovecot writes its index and uidlist into the source Maildir: let it.
    chown -R 65534:65534 "$W/src"
    D="$W/dovecot"
    mkdir -p "$D/run" "$D/state" "$D/home"
    chown 65534:65534 "$D/home"
    for fmt in maildir mdbox; do
        cat > "$D/$fmt.conf" <<CONF
base_dir = $D/run
state_dir = $D/state
log_path = $D/dovecot.log
mail_location = $fmt:$D/home/$fmt
ssl = no
first_valid_uid = 0
first_valid_gid = 0
mail_uid = 65534
mail_gid = 65534
namespace inbox {
  inbox = yes
  separator = /
}
CONF
        sync
        start=$(date +%s.%N)
        USER=bench HOME="$D/home" doveadm -c "$D/$fmt.conf" import -s "maildir:$W/src" "" all
        USER=bench HOME="$D/home" doveadm -c "$D/$fmt.conf" mailbox status messages INBOX
        end=$(date +%s.%N)
        t=$(echo "$end - $start" | bc)
        echo "doveadm import into $fmt: $t s, $(echo "$N / $t" | bc) msg/s"
    done
fi
