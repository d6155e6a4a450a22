"""Export and import again: the 389-message corpus keeps its bytes, flags, keywords, folders,
INTERNALDATEs (and, through Maildir's dovecot-uidlist, its UIDs and UIDVALIDITYs)."""

import os
import shutil

from helpers import ROOT, account, export_cli, import_cli, tmpdir

CORPUS = ROOT / "tests" / "corpus" / "messages"
FOLDERS = ["", ".Sent", ".Lists.rust", ".Archive.2023"]


def corpus_maildir(root):
    """The corpus as a Maildir++ tree, spread over folders, with flags and keywords."""
    files = sorted(CORPUS.iterdir())
    assert len(files) == 389
    for f in FOLDERS:
        for sub in ("cur", "new", "tmp"):
            (root / f / sub).mkdir(parents=True, exist_ok=True)
        (root / f / "dovecot-keywords").write_text("0 $Junk\n1 work\n2 $Forwarded\n")
    for i, src in enumerate(files):
        info = "".join(c for c, on in [("D", i % 7 == 0), ("F", i % 3 == 0), ("R", i % 5 == 0),
                                       ("S", i % 2 == 1), ("T", i % 11 == 0)] if on)
        info += "".join(c for c, on in [("a", i % 6 == 0), ("b", i % 4 == 1),
                                        ("c", i % 9 == 0)] if on)
        p = root / FOLDERS[i % 4] / "cur" / f"{1600000000 + i}.M{i}P1.host:2,{info}"
        p.write_bytes(src.read_bytes())
        os.utime(p, (1600000000 + i * 1000, 1600000000 + i * 1000))


def test_corpus_round_trip(make_server):
    server = make_server(users=("alice", "bob", "carol"))
    work = tmpdir()
    try:
        corpus_maildir(work / "corpus")
        import_cli(server, "maildir", str(work / "corpus"), "--user", "alice")
        alice = account(server, "alice")
        assert sum(len(m) for _, m in alice.values()) == 389
        assert sorted(alice) == ["Archive/2023", "INBOX", "Lists/rust", "Sent"]

        # Maildir: everything the same, UIDs and UIDVALIDITY included.
        export_cli(server, "maildir", "--user", "alice", str(work / "md"))
        import_cli(server, "maildir", str(work / "md"), "--user", "bob")
        assert account(server, "bob") == alice

        # A second export into the same directory is refused (old files would come back).
        r = server.cli("export", "maildir", "--user", "alice", str(work / "md"))
        assert r.returncode != 0 and "not empty" in r.stderr

        # mbox: the same messages, flags, keywords, folders and dates, in the same order.
        # (mbox cannot say that a message lacked a final line end: it gets one.)
        export_cli(server, "mbox", "--user", "alice", str(work / "mbox"))
        import_cli(server, "mbox", str(work / "mbox"), "--user", "carol")
        carol = account(server, "carol")
        assert sorted(carol) == sorted(alice)
        for folder, (_, msgs) in alice.items():
            want = [(f, d, b if b.endswith(b"\n") else b + b"\r\n")
                    for f, d, b in (msgs[u] for u in sorted(msgs))]
            got = [carol[folder][1][u] for u in sorted(carol[folder][1])]
            assert len(got) == len(want), folder
            for i, (g, w) in enumerate(zip(got, want)):
                assert g == w, f"{folder} message {i + 1}"
    finally:
        shutil.rmtree(work, ignore_errors=True)
