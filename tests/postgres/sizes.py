"""What a message costs in PostgreSQL and in the body store (the figures of docs/scaling.md).

    cargo build --bin mailkeep && python3 tests/postgres/sizes.py [--copies N]

Starts a throwaway PostgreSQL (as tests/postgres/conftest.py does) and one node with
`bodies = "dir"`, APPENDs the real-world corpus (tests/corpus/messages, 389 messages) and a
set of plain 5,000-byte text messages, each set into an account of its own, then prints per
message the bytes of each table with its indexes and TOAST (`pg_total_relation_size`) and the
body bytes before and after zstd. `--copies N` also appends the corpus N more times into other
accounts (shared bodies: rows per message, no new body)."""

import argparse
import imaplib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import PASSWORD, ROOT, Postgres, Server  # noqa: E402

TABLES = ["messages", "bodies", "search", "previews", "thread_ids", "thread_msgids",
          "body_files", "mailboxes", "users"]


def text_message(i):
    words = ("mail server storage account folder message reply thanks meeting "
             "tomorrow report draft budget").split()
    body = []
    n = 0
    while n < 4700:
        w = words[(i * 7 + n) % len(words)]
        body.append(w)
        n += len(w) + 1
    lines = [" ".join(body[j:j + 12]) for j in range(0, len(body), 12)]
    head = (f"From: user{i % 50}@example.org\r\nTo: a@example.org\r\nSubject: note {i}\r\n"
            f"Message-ID: <m{i}@example.org>\r\nDate: Sat, 5 Dec 2026 09:00:00 +0000\r\n\r\n")
    return (head + "\r\n".join(lines) + "\r\n").encode()[:5000]


def sizes(pg, url):
    out = {}
    for t in TABLES:
        out[t] = int(pg.sql(url, f"SELECT pg_total_relation_size('{t}')").strip())
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=0)
    ap.add_argument("--text", type=int, default=2000)
    args = ap.parse_args()
    corpus = [p.read_bytes() for p in sorted((ROOT / "tests/corpus/messages").iterdir())
              if p.is_file()]
    pg = Postgres()
    server = None
    try:
        url = pg.create_database()
        bodies = pg.dir / "bodies"
        users = ["corpus", "text"] + [f"copy{i}" for i in range(args.copies)]
        server = Server(extra_config=f'[store]\nbackend = "postgres"\nurl = "{url}"\n'
                                     f'bodies = "dir"\nbodies_dir = "{bodies}"\n',
                        users=users)

        def fill(user, msgs):
            before = sizes(pg, url)
            files_before = sum(p.stat().st_size for p in bodies.glob("*/*"))
            c = imaplib.IMAP4(*server.imap)
            c.login(user, PASSWORD)
            for m in msgs:
                typ, data = c.append("INBOX", None, None, m)
                assert typ == "OK", data
            c.logout()
            after = sizes(pg, url)
            files = sum(p.stat().st_size for p in bodies.glob("*/*")) - files_before
            n = len(msgs)
            raw = sum(len(m) for m in msgs)
            print(f"\n{user}: {n} messages, {raw / n:,.0f} bytes each on average")
            total = 0
            for t in TABLES:
                d = after[t] - before[t]
                total += d
                if d:
                    print(f"  {t:14} {d / n:10,.0f} bytes per message")
            print(f"  {'PostgreSQL':14} {total / n:10,.0f} bytes per message (all tables)")
            print(f"  {'body files':14} {files / n:10,.0f} bytes per message "
                  f"(zstd: {files / raw:.2f} of the raw bytes)")

        fill("corpus", corpus)
        fill("text", [text_message(i) for i in range(args.text)])
        for i in range(args.copies):
            fill(f"copy{i}", corpus)
    finally:
        if server:
            server.cleanup()
        pg.stop()


if __name__ == "__main__":
    main()
