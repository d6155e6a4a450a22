#!/usr/bin/env python3
"""Differential IMAP conformance sweep: Mailkeep against Dovecot 2.3.

Runs the scripted command sequences of `compare_scenarios.py` against a fresh Mailkeep
(target/debug/mailkeep, port 0, a new data directory) and a fresh Dovecot (started here from
tests/peer/dovecot-test.conf (the repository's copy of ../shared/peer) with `protocols = imap`, Maildir in a scratch directory).
Each scenario logs in as its own new user on both servers, so mailboxes start empty (apart from
INBOX and the special-use folders Mailkeep creates, which Dovecot is told to auto-create).

Responses are normalized before comparing: human text after status codes, the greeting,
CAPABILITY and ID lists, UIDVALIDITY and MODSEQ values, Dovecot's timing suffix. What remains is
printed per command, Mailkeep first.

    scripts/compare-with-dovecot.py                 # every rev1 scenario, differences only
    scripts/compare-with-dovecot.py list rename     # scenarios whose name contains a word
    scripts/compare-with-dovecot.py --all           # print equal steps too
    scripts/compare-with-dovecot.py --rev2          # rev2 scenarios: Mailkeep only, read
                                                    # against RFC 9051 (Dovecot 2.3 lacks rev2)

Python 3 standard library only; raw sockets.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_scenarios  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_CONF = os.environ.get(
    "MAILKEEP_PEER_CONF", os.path.join(ROOT, "tests", "peer", "dovecot-test.conf")
)
SPECIAL = ["Archive", "Drafts", "Junk", "Sent", "Trash"]
TIMEOUT = 3.0


# ---------------------------------------------------------------------------------- servers


class Mailkeep:
    def __init__(self, binary):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="mk-compare-")
        self.config = os.path.join(self.dir, "mailkeep.toml")
        with open(self.config, "w") as f:
            f.write(
                f'data_dir = "{self.dir}/data"\n[imap]\nlisten = ["127.0.0.1:0"]\n'
                '[imaps]\nlisten = ["127.0.0.1:0"]\n'
            )
        self.add_user("warmup")
        self.proc = subprocess.Popen(
            [binary, "serve", "--config", self.config],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.addr = None
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            m = re.search(r"imap listening on ([0-9.]+):(\d+)", line or "")
            if m:
                self.addr = (m.group(1), int(m.group(2)))
                break
            if not line:
                break
        if not self.addr:
            self.stop()
            raise SystemExit("mailkeep did not start")

    def add_user(self, name):
        subprocess.run(
            [self.binary, "user", "add", name, "--allow-weak-password", "--config", self.config],
            input="pass\n",
            text=True,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Dovecot:
    def __init__(self, port, users):
        self.dir = tempfile.mkdtemp(prefix="dc-compare-")
        d = self.dir
        os.chmod(d, 0o755)  # the auth and mail processes run as other users
        for sub in ("run", "state", "log", "ssl"):
            os.makedirs(f"{d}/dovecot/{sub}")
        os.makedirs(f"{d}/mail")
        shutil.chown(f"{d}/mail", "mail", "mail")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
             f"{d}/dovecot/ssl/key.pem", "-out", f"{d}/dovecot/ssl/cert.pem", "-days", "2",
             "-subj", "/CN=localhost"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        with open(f"{d}/dovecot/users", "w") as f:
            for u in users:
                f.write(f"{u}:{{PLAIN}}pass::::::\n")
        self.conf = f"{d}/dovecot/dovecot.conf"
        with open(self.conf, "w") as f:
            f.write(self.config_text(port))
        subprocess.run(["dovecot", "-c", self.conf], check=True)
        self.addr = ("127.0.0.1", port)
        for _ in range(50):
            try:
                socket.create_connection(self.addr, 1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("dovecot did not start")

    def config_text(self, port):
        text = open(PEER_CONF).read().replace("@DIR@", self.dir)
        text = re.sub(r"(?m)^protocols = .*$", "protocols = imap", text)
        # Only the IMAP login service: the pop3/lmtp binaries are not installed.
        text = re.sub(r"(?ms)^service (pop3-login|lmtp) \{.*?^\}\n", "", text)
        text = text.replace("port = 10143", f"port = {port}")
        text = text.replace("port = 10993", f"port = {port + 850}")
        # Mailkeep creates and subscribes INBOX and five special-use folders for a new user.
        boxes = "  mailbox INBOX {\n    auto = subscribe\n  }\n" + "".join(
            f"  mailbox {b} {{\n    auto = subscribe\n    special_use = \\{b}\n  }}\n"
            for b in SPECIAL
        )
        return text.replace("  separator = /\n", "  separator = /\n" + boxes)

    def stop(self):
        subprocess.run(["doveadm", "-c", self.conf, "stop"], check=False)
        time.sleep(0.3)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------- client


class Conn:
    def __init__(self, addr):
        self.sock = socket.create_connection(addr, 5)
        self.sock.settimeout(TIMEOUT)
        self.buf = b""
        self.greeting = self.read_line()

    def read_line(self, timeout=None):
        """One response line with its literals inlined; None on timeout or close."""
        self.sock.settimeout(timeout or TIMEOUT)
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                try:
                    chunk = self.sock.recv(65536)
                except (socket.timeout, OSError):
                    return out + self.buf if out else None
                if not chunk:
                    return (out + self.buf) if (out or self.buf) else None
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            out += line
            m = re.search(rb"\{(\d+)\}$", line)
            if not m:
                return out
            n = int(m.group(1))
            while len(self.buf) < n:
                try:
                    chunk = self.sock.recv(65536)
                except (socket.timeout, OSError):
                    return out + self.buf
                if not chunk:
                    return out + self.buf
                self.buf += chunk
            out += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]

    def command(self, data):
        """Send one command (waiting for `+` at each synchronizing literal); the response lines
        up to and including the tagged one."""
        tag = data.split(b" ", 1)[0]
        parts = re.split(rb"(\{\d+\}\r\n)", data)
        lines = []
        try:
            for i in range(0, len(parts), 2):
                chunk = parts[i] + (parts[i + 1] if i + 1 < len(parts) else b"")
                self.sock.sendall(chunk)
                if i + 1 < len(parts):
                    while True:
                        line = self.read_line()
                        if line is None:
                            return lines + [b"<no continuation>"]
                        lines.append(line)
                        if line.startswith(b"+") or line.startswith(tag + b" "):
                            break
                    if not line.startswith(b"+"):
                        return lines
        except OSError as e:
            return lines + [f"<send error {e}>".encode()]
        return lines + self.until(tag)

    def until(self, tag):
        lines = []
        while True:
            line = self.read_line()
            if line is None:
                return lines + [b"<timeout or closed>"]
            lines.append(line)
            if line.startswith(tag + b" ") or line.startswith(b"* BYE") and tag == b"*":
                return lines

    def drain(self, timeout):
        lines = []
        while True:
            line = self.read_line(timeout)
            if line is None:
                return lines
            lines.append(line)


# ---------------------------------------------------------------------------------- normalizing

STATUS = re.compile(rb"^(\S+) (OK|NO|BAD|BYE|PREAUTH)(?: (\[[^\]]*\]))?(.*)$", re.S)


def normalize(line):
    m = STATUS.match(line)
    if m:
        tag, status, code = m.group(1), m.group(2), m.group(3) or b""
        if code.startswith(b"[CAPABILITY"):
            code = b"[CAPABILITY ...]"
        code = re.sub(rb"^\[(UIDVALIDITY|HIGHESTMODSEQ) \d+\]", rb"[\1 n]", code)
        code = re.sub(rb"^\[(APPENDUID|COPYUID) \d+", rb"[\1 v", code)
        out = b" ".join(x for x in (tag, status, code) if x)
        if tag == b"+":
            out = b"+"
        return out
    if line.startswith(b"+"):
        return b"+"
    if line.startswith(b"* CAPABILITY ") or line.startswith(b"* ID "):
        return line.split(b" ")[0] + b" " + line.split(b" ")[1] + b" ..."
    line = re.sub(rb"(MODSEQ \(?)\d+", rb"\1n", line)
    line = re.sub(rb"(UIDVALIDITY) \d+", rb"\1 n", line)
    return line


def sort_listings(lines):
    """LIST/LSUB order is not specified: sort each listing (with its STATUS lines) by name."""
    out, group = [], []
    for line in lines + [None]:
        if line is not None and line.startswith((b"* LIST ", b"* LSUB ")):
            group.append([line])
        elif line is not None and line.startswith(b"* STATUS ") and group:
            group[-1].append(line)
        else:
            if group:
                key = lambda g: g[0].split(b'"/" ', 1)[-1].strip(b'"')  # noqa: E731
                out.extend(x for g in sorted(group, key=key) for x in g)
                group = []
            if line is not None:
                out.append(line)
    return out


# ---------------------------------------------------------------------------------- running


def run(scenario, server, user, login=True):
    global TIMEOUT
    TIMEOUT = scenario.get("timeout", 3.0)  # failed logins are answered after a delay
    conns, out = {}, []

    def conn(cid):
        if cid not in conns:
            c = Conn(server.addr)
            conns[cid] = c
            if login and scenario.get("login", True):
                c.sock.sendall(b"L0 LOGIN " + user.encode() + b" pass\r\n")
                for _ in range(5):  # Dovecot's first login waits for its auth process
                    line = c.read_line()
                    if line and line.startswith(b"L0 "):
                        break
        return conns[cid]

    for step in scenario["steps"]:
        if isinstance(step, str):
            step = step.encode()
        cid = 1
        m = re.match(rb"^C(\d+) ", step)
        if m:
            cid, step = int(m.group(1)), step[m.end():]
        if step.startswith(b"!sleep "):
            time.sleep(float(step.split()[1]) / 1000)
            continue
        c = conn(cid)
        if step == b"!read":
            got = c.drain(0.6)
        elif step == b"!idle":
            c.sock.sendall(b"I IDLE\r\n")
            got = []
            while True:
                line = c.read_line()
                got.append(line or b"<timeout>")
                if line is None or line.startswith(b"+") or line.startswith(b"I "):
                    break
        elif step == b"!done":
            c.sock.sendall(b"DONE\r\n")
            got = c.until(b"I")
        elif step.startswith(b"!raw "):
            c.sock.sendall(step[5:])
            got = c.drain(0.6)
        else:
            got = c.command(step + b"\r\n")
        out.append((cid, step.rstrip(b"\r\n"), got))
    for c in conns.values():
        c.sock.close()
    return out


def show(b, limit=300):
    s = b.decode("utf-8", "backslashreplace").replace("\r\n", "⏎")
    return s if len(s) <= limit else s[:limit] + f"...({len(s)} chars)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("words", nargs="*", help="run only scenarios whose name contains one")
    ap.add_argument("--all", action="store_true", help="print equal steps too")
    ap.add_argument("--rev2", action="store_true", help="rev2 scenarios, Mailkeep only")
    ap.add_argument("--raw", action="store_true", help="print responses unnormalized")
    ap.add_argument("--port", type=int, default=30143, help="Dovecot's IMAP port")
    ap.add_argument("--mailkeep", default=os.path.join(ROOT, "target/debug/mailkeep"))
    args = ap.parse_args()

    pool = compare_scenarios.REV2 if args.rev2 else compare_scenarios.REV1
    chosen = [s for s in pool if not args.words or any(w in s["name"] for w in args.words)]
    users = [f"cmp{i}" for i in range(len(chosen))]
    mk = Mailkeep(args.mailkeep)
    dc = None if args.rev2 else Dovecot(args.port, users)
    norm = (lambda x: x) if args.raw else normalize
    differing = 0
    try:
        for scenario, user in zip(chosen, users):
            mk.add_user(user)
            ours = run(scenario, mk, user)
            print(f"=== {scenario['name']}: {scenario.get('about', '')}")
            if dc is None:
                for cid, cmd, got in ours:
                    print(f"C{cid}> {show(cmd)}")
                    for line in got:
                        print(f"   {show(norm(line))}")
                continue
            theirs = run(scenario, dc, user)
            same = True
            for (cid, cmd, a), (_, _, b) in zip(ours, theirs):
                na = sort_listings([norm(x) for x in a])
                nb = sort_listings([norm(x) for x in b])
                if na == nb and not args.all:
                    continue
                same = same and na == nb
                print(f"C{cid}> {show(cmd)}" + ("" if na == nb else "   <<< differs"))
                if na == nb:
                    for line in na:
                        print(f"   = {show(line)}")
                    continue
                for line in na:
                    print(f"   mk {show(line)}")
                for line in nb:
                    print(f"   dc {show(line)}")
            if not same:
                differing += 1
        if dc is not None:
            print(f"--- {differing} of {len(chosen)} scenarios differ")
    finally:
        mk.stop()
        if dc:
            dc.stop()


if __name__ == "__main__":
    main()
