"""Times N rounds of LOGIN+SELECT+FETCH 1:20 (FLAGS ENVELOPE)+LOGOUT against mailkeep on a
throwaway PostgreSQL and reads the CPU PostgreSQL's processes used (/proc). Usage:
MAILKEEP_TEST_STORE=postgres MAILKEEP_BIN=... python3 tools/bench/pg_rounds.py [rounds] [threads]"""
import imaplib, os, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "lib"))
import mkserver, pgserver

HZ = os.sysconf("SC_CLK_TCK")

def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    # fields[0]=state; utime=13, stime=14, cutime=15, cstime=16 (1-based 14..17)
    return int(fields[1]), [int(x) for x in fields[11:15]]

def pg_cpu(postmaster):
    total = 0
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            ppid, (ut, st, cut, cst) = stat(int(p))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if int(p) == postmaster:
            total += ut + st + cut + cst
        elif ppid == postmaster:
            total += ut + st
    return total / HZ

def proc_cpu(pid):
    _, (ut, st, _, _) = stat(pid)
    return (ut + st) / HZ

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 4
srv = mkserver.Server(users=("alice",))
try:
    pg = pgserver.shared()
    postmaster = int((pg.dir / "data" / "postmaster.pid").read_text().split()[0])
    c = imaplib.IMAP4(*srv.imap)
    c.login("alice", mkserver.PASSWORD)
    for i in range(20):
        msg = (f"From: a{i}@example.com\r\nTo: alice@example.com\r\nSubject: bench {i}\r\n"
               f"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <{i}@x>\r\n\r\nbody {i}\r\n")
        c.append("INBOX", None, None, msg.encode())
    c.logout()

    def one():
        c = imaplib.IMAP4(*srv.imap)
        c.login("alice", mkserver.PASSWORD)
        c.select("INBOX")
        typ, data = c.fetch("1:20", "(FLAGS ENVELOPE)")
        assert typ == "OK" and len([d for d in data if isinstance(d, bytes)]) + len([d for d in data if isinstance(d, tuple)]) >= 20, data
        c.logout()

    for _ in range(20):  # warm-up: pool connections made
        one()
    per = rounds // threads
    errors = []

    def worker():
        try:
            for _ in range(per):
                one()
        except Exception as e:  # noqa
            errors.append(e)

    pg0, mk0, t0 = pg_cpu(postmaster), proc_cpu(srv.proc.pid), time.monotonic()
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    wall = time.monotonic() - t0
    pg1, mk1 = pg_cpu(postmaster), proc_cpu(srv.proc.pid)
    assert not errors, errors
    n = per * threads
    print(f"bin={mkserver.BIN} rounds={n} threads={threads} wall={wall:.1f}s "
          f"rounds/s={n / wall:.1f} postgres_cpu={pg1 - pg0:.2f}s "
          f"({(pg1 - pg0) / n * 1000:.2f} ms/round) mailkeep_cpu={mk1 - mk0:.2f}s")
finally:
    srv.cleanup()
