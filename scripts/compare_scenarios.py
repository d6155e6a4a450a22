"""Scenarios for compare-with-dovecot.py.

A scenario is {"name", "about", "steps"}; a step is one command line (CRLF added), literals
included as `{n}\r\n...` (the runner waits for `+` on synchronizing ones). `C2 ` in front sends
on a second connection (each connection logs in first unless "login": False). Special steps:
`!idle` (send `I IDLE`, read to `+`), `!done`, `!read` (what arrives within 0.6 s),
`!sleep MS`, `!raw BYTES` (send bytes as they are, read what arrives).
"""


def msg(n, subject=None, body="Hello body\r\n", extra=""):
    return (
        f"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\n"
        f"Subject: {subject or f'message {n}'}\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
        f"Message-ID: <m{n}@example.org>\r\n{extra}\r\n{body}"
    )


def append(tag, box, n, flags="", date=' "07-Feb-1994 21:52:25 -0800"', **kw):
    m = msg(n, **kw).encode()
    return f"{tag} APPEND {box}{(' (' + flags + ')') if flags else ''}{date} {{{len(m)}}}\r\n" + m.decode()


def seed(box="INBOX", count=3):
    return [append(f"s{i}", box, i, flags="\\Seen" if i == 1 else "") for i in range(1, count + 1)]


S = seed()
BIG = "x" * 70000

REV1 = [
    {"name": "any-state", "about": "CAPABILITY NOOP LOGOUT ID before login", "login": False, "timeout": 8, "steps": [
        "a CAPABILITY", "b NOOP", "c ID NIL", "d SELECT INBOX", "e LIST \"\" *", "f ENABLE CONDSTORE",
        "g LOGIN cmp0 wrong", "h AUTHENTICATE FOO", "i STATUS INBOX (MESSAGES)", "j LOGOUT"]},
    {"name": "wrong-state", "about": "selected-only commands while authenticated", "steps": [
        "a FETCH 1 FLAGS", "b STORE 1 +FLAGS \\Seen", "c SEARCH ALL", "d EXPUNGE", "e CLOSE",
        "f UNSELECT", "g COPY 1 Trash", "h MOVE 1 Trash", "i UID FETCH 1 FLAGS", "j CHECK",
        "k LOGIN a b", "l AUTHENTICATE PLAIN", "m STARTTLS"]},
    {"name": "bad-syntax", "about": "garbage, unknown commands, bad arguments", "steps": [
        "a FOO", "b", "c SELECT", "d FETCH", "e LIST", "f LIST \"\"", "g STATUS INBOX", "h STATUS INBOX ()",
        "i STATUS INBOX (FOO)", "j CREATE", "k NOOP extra", "l SELECT INBOX extra", "m LIST \"\" * extra",
        "n SELECT \"unterminated", "o SELECT {3+}\r\nIN", "* NOOP", "+ NOOP", "p) NOOP", "q{ NOOP", "r0 NOOP",
        "r UID", "s UID FOO 1", "t ENABLE", "u EXAMINE nonexistent", "v SELECT nonexistent",
        "w STATUS nonexistent (MESSAGES)", "x DELETE nonexistent", "y RENAME nonexistent foo",
        "z SUBSCRIBE nonexistent", "aa UNSUBSCRIBE nonexistent"]},
    {"name": "selected-errors", "about": "bad sets and items while selected", "steps": S + [
        "a SELECT INBOX", "b FETCH 0 FLAGS", "c FETCH 9 FLAGS", "d FETCH * FLAGS", "e FETCH 1:* FOO",
        "f FETCH 1 (FLAGS", "g STORE 9 +FLAGS (\\Seen)", "h STORE 1 +FLAGS (\\Recent)",
        "i STORE 1 FOO (\\Seen)", "j SEARCH FOO", "k0 NOOP", "k SEARCH UID", "l COPY 9 Trash", "m COPY 1 nonexistent",
        "n MOVE 1 nonexistent", "o UID FETCH 99 FLAGS", "p UID STORE 99 +FLAGS (\\Seen)",
        "q UID COPY 99 Trash", "r UID MOVE 99 Trash", "s FETCH 2:1 UID", "t FETCH 1,,2 UID",
        "u SEARCH CHARSET FOO ALL", "v SEARCH CHARSET UTF-8 SUBJECT \"message\"", "w STORE 1 +FLAGS (\\Foo)",
        "x FETCH 1 BODY[1.0]", "y FETCH 1 BODY[TEXT]<5.0>", "z FETCH 4294967296 UID"]},
    {"name": "select-examine", "about": "SELECT/EXAMINE responses, reselect, CLOSE, UNSELECT", "steps": S + [
        "a SELECT INBOX", "b EXAMINE INBOX", "c SELECT Trash", "d SELECT nonexistent", "e NOOP",
        "f EXAMINE INBOX", "g STORE 1 +FLAGS (\\Deleted)", "h EXPUNGE", "i CLOSE", "j SELECT INBOX",
        "k UNSELECT", "l UNSELECT", "m CHECK"]},
    {"name": "create", "about": "CREATE edge cases", "steps": [
        "a CREATE foo", "b CREATE foo", "c CREATE foo/", "d CREATE bar/", "e CREATE a//b", "f CREATE INBOX",
        "g CREATE inbox", "h CREATE INBOX/sub", "i CREATE pct%", "j CREATE star*", "k CREATE amp&",
        "l CREATE amp&-", "m CREATE &AOk-t&AOk-", "n CREATE \"sp ace\"", "o CREATE /lead",
        "p CREATE x/y/z", "q CREATE \"\"", "r CREATE \"café\"", "r2 CREATE \"pct%\"", "r3 CREATE \"star*\"", "s CREATE \"&Jjo\"",
        "t LIST \"\" *", "u CREATE Trash/sub", "v CREATE \"foo/ \"", "w CREATE .", "x CREATE ..",
        "y CREATE a/./b"]},
    {"name": "delete", "about": "DELETE with children, INBOX, selected", "steps": [
        "a CREATE p/c", "b DELETE p", "c LIST \"\" p*", "d DELETE p", "e DELETE p/c", "f DELETE p",
        "g DELETE INBOX", "h CREATE sel", "i SELECT sel", "j DELETE sel", "k NOOP", "l LIST \"\" *",
        "m DELETE nonexistent", "n CREATE q/c", "o DELETE q/c", "p LIST \"\" q*"]},
    {"name": "rename", "about": "RENAME edge cases", "steps": seed(count=2) + [
        "a CREATE p/c/d", "b RENAME p r", "c LIST \"\" *", "d RENAME r r/sub", "e RENAME r Trash",
        "f RENAME r r", "g RENAME nonexistent x", "h RENAME INBOX old-inbox", "i LIST \"\" *",
        "j STATUS INBOX (MESSAGES)", "k STATUS old-inbox (MESSAGES)", "l RENAME old-inbox INBOX",
        "m RENAME r/c x/y/z", "n LIST \"\" *", "o CREATE selme", "p SELECT selme", "q RENAME selme moved",
        "r NOOP", "s RENAME Trash TrashX", "t LIST \"\" Trash*", "u RENAME x INBOX/x", "v RENAME x inbox"]},
    {"name": "list-patterns", "about": "LIST/LSUB patterns and references", "steps": [
        "a CREATE top/mid/leaf", "b CREATE other", "c SUBSCRIBE top/mid", "d LIST \"\" \"\"",
        "e LIST top/ \"\"", "f LIST \"\" %", "g LIST \"\" *", "h LIST \"\" top/%", "i LIST top/ %",
        "j LIST top *", "k LIST \"\" top", "l LIST \"\" inbox", "m LIST \"\" IN*", "n LIST \"\" *mid*",
        "o LSUB \"\" *", "p LSUB \"\" %", "q LSUB \"\" top", "r LIST \"\" nonexistent",
        "s LIST \"\" \"%/%\"", "t UNSUBSCRIBE top/mid", "u LSUB \"\" *", "v DELETE other",
        "w LIST \"\" other", "x LIST /top *", "y LIST \"\" /*"]},
    {"name": "list-root", "about": "LIST with an empty pattern and a reference: the root name", "steps": [
        "a CREATE top/mid", "b LIST top/ \"\"", "c LIST top \"\"", "d LIST top/mid/ \"\"", "e LIST /top \"\"",
        "f LIST \"\" \"\"", "g LIST nonexistent/x \"\"", "h LIST INBOX/ \"\"", "i LIST inbox/ \"\"",
        "j LIST \"\" \"\" RETURN (CHILDREN)", "k LIST (SUBSCRIBED) \"\" \"\"", "l LIST & \"\"", "m LIST top/% \"\""]},
    {"name": "list-extended", "about": "LIST-EXTENDED selection and return options", "steps": [
        "a CREATE top/mid", "b SUBSCRIBE top/mid", "c UNSUBSCRIBE Trash", "d SUBSCRIBE gone", 
        "e LIST (SUBSCRIBED) \"\" *", "f LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %",
        "g LIST \"\" * RETURN (CHILDREN)", "h LIST \"\" * RETURN (SUBSCRIBED)",
        "i LIST (SPECIAL-USE) \"\" *", "j LIST \"\" * RETURN (SPECIAL-USE)",
        "k LIST \"\" % RETURN (STATUS (MESSAGES UIDNEXT UNSEEN))", "l LIST (\"\" \"\") \"\" (INBOX top)",
        "m LIST \"\" (INBOX top/%)", "n LIST (RECURSIVEMATCH) \"\" *", "o LIST (FOO) \"\" *",
        "p LIST \"\" * RETURN (FOO)", "q LIST () \"\" % RETURN ()", "r LIST (REMOTE) \"\" %",
        "s LIST \"\" % RETURN (STATUS (SIZE))", "t LIST (SUBSCRIBED) \"\" * RETURN (CHILDREN)"]},
    {"name": "subscribe", "about": "SUBSCRIBE/UNSUBSCRIBE", "steps": [
        "a SUBSCRIBE INBOX", "b SUBSCRIBE nonexistent", "c UNSUBSCRIBE nonexistent", "d UNSUBSCRIBE nonexistent",
        "e LSUB \"\" *", "f CREATE x", "g SUBSCRIBE x", "h DELETE x", "i LSUB \"\" *", "j UNSUBSCRIBE x"]},
    {"name": "status", "about": "STATUS incl. selected mailbox", "steps": S + [
        "a STATUS INBOX (MESSAGES RECENT UIDNEXT UNSEEN)", "b SELECT INBOX",
        "c STATUS INBOX (MESSAGES RECENT UIDNEXT UNSEEN)", "d STATUS INBOX (SIZE)",
        "e STATUS INBOX (DELETED)", "f STATUS INBOX (HIGHESTMODSEQ)", "g STATUS Trash (MESSAGES)",
        "h STATUS inbox (MESSAGES)", "i STATUS INBOX (APPENDLIMIT)", "j STATUS INBOX (UIDVALIDITY)"]},
    {"name": "status-recent", "about": "STATUS RECENT of the selected mailbox, other session", "steps": [
        "a1 APPEND INBOX {12+}\r\nSubject: 1\r\n", "a2 APPEND INBOX {12+}\r\nSubject: 2\r\n",
        "b STATUS INBOX (MESSAGES RECENT)", "c SELECT INBOX", "d STATUS INBOX (MESSAGES RECENT)",
        "e LIST \"\" INBOX RETURN (STATUS (RECENT))", "C2 y STATUS INBOX (RECENT)",
        "C2 z APPEND INBOX {12+}\r\nSubject: 3\r\n", "f STATUS INBOX (RECENT)", "g STATUS INBOX (RECENT)"]},
    {"name": "append", "about": "APPEND flags, dates, errors, TRYCREATE", "steps": [
        append("a", "INBOX", 1, flags="\\Seen \\Flagged kw1"), append("b", "INBOX", 2, date=""),
        append("c", "INBOX", 3, date=' "32-Feb-1994 21:52:25 -0800"'),
        append("d", "INBOX", 4, date=' "7-Feb-1994 21:52:25 -0800"'),
        append("e", "INBOX", 5, date=' " 7-Feb-1994 21:52:25 -0800"'),
        append("f", "INBOX", 6, date=' "07-Feb-1994 21:52:25"'), append("g", "nonexistent", 7),
        "h APPEND INBOX {0}\r\n", append("i", "INBOX", 9, flags="\\Recent"),
        append("j", "INBOX", 10, flags="\\Foo"), "k APPEND INBOX (\\Seen) {3+}\r\nabc",
        "l APPEND INBOX", "m APPEND INBOX (\\Seen)", "n APPEND INBOX \"x\"", append("o", "INBOX", 15, flags="$Junk \\Draft"),
        "p SELECT INBOX", "q FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE)",
        append("r", "INBOX", 18, flags="\\Seen"), "s NOOP",
        "t APPEND INBOX {3}\r\nab\n", "u APPEND INBOX ({3}\r\nabc"]},
    {"name": "multiappend", "about": "MULTIAPPEND", "steps": [
        "a APPEND INBOX (\\Seen) {3}\r\nabc (\\Flagged) {4}\r\ndefg", "b STATUS INBOX (MESSAGES)",
        "c APPEND INBOX {3}\r\nabc {0}\r\n", "d STATUS INBOX (MESSAGES)",
        "e APPEND INBOX {3}\r\nabc \"bad-date\" {3}\r\nxyz", "f STATUS INBOX (MESSAGES)",
        "g APPEND nonexistent {3}\r\nabc {3}\r\nxyz"]},
    {"name": "fetch", "about": "FETCH items and partials", "steps": S + [
        append("m", "INBOX", 4, body="--b\r\nContent-Type: text/plain\r\n\r\npart one\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>two</p>\r\n--b--\r\n",
               extra="MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n"),
        "a SELECT INBOX", "b FETCH 1 (UID FLAGS RFC822.SIZE INTERNALDATE)", "c FETCH 1 ENVELOPE", "d FETCH 1 ALL",
        "e FETCH 1 FAST", "f FETCH 1 FULL", "g FETCH 1 BODY", "h FETCH 4 BODYSTRUCTURE", "i FETCH 1 BODY.PEEK[HEADER]",
        "j FETCH 1 BODY.PEEK[TEXT]<0.5>", "k FETCH 1 BODY.PEEK[]<5.10>", "l FETCH 1 BODY.PEEK[]<100000.10>",
        "m FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject FROM)]", "n FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (Subject)]",
        "o FETCH 4 BODY.PEEK[1]", "p FETCH 4 BODY.PEEK[2.MIME]", "q FETCH 4 BODY.PEEK[3]", "r FETCH 1 BODY.PEEK[1]",
        "s FETCH 2 RFC822.HEADER", "t FETCH 2 RFC822.TEXT", "u FETCH 2 FLAGS", "v FETCH 3 RFC822", "w FETCH 3 FLAGS",
        "x FETCH 2 BODY[]<0.0>", "y FETCH 1:* (FLAGS)", "z UID FETCH 2:* (FLAGS)", "aa UID FETCH * UID",
        "ab FETCH 1 BODY.PEEK[HEADER.FIELDS ()]", "ac FETCH 1 (BODY[HEADER.FIELDS (Subject)]<0.5>)",
        "ad FETCH 1 BINARY.PEEK[1]", "ae FETCH 4 BINARY.SIZE[1]", "af FETCH 4 BINARY.PEEK[1]<0.3>",
        "ag FETCH 1 BODY.PEEK[0]", "ah FETCH 4 BODY.PEEK[1.1]", "ai FETCH 4 BODY.PEEK[4.TEXT]",
        "aj FETCH 1 (UID UID)", "ak FETCH 1 BINARY.PEEK[]", "al FETCH 1 BODY.PEEK[HEADER]<10.5>"]},
    {"name": "store", "about": "STORE flags, keywords, .SILENT", "steps": S + [
        "a SELECT INBOX", "b STORE 1 +FLAGS (\\Flagged)", "c STORE 1 -FLAGS (\\Seen)", "d STORE 1 FLAGS (\\Answered kw)",
        "e STORE 1 +FLAGS.SILENT (\\Deleted)", "f STORE 1:* +FLAGS (other)", "g STORE 2 FLAGS ()",
        "h STORE 2 +FLAGS \\Seen \\Draft", "i UID STORE 1:* -FLAGS.SILENT (other)", "j FETCH 1:* FLAGS",
        "k STORE 1 +FLAGS ($Forwarded)", "l STORE 1 +FLAGS (kw)", "m STORE 1 -FLAGS (nope)",
        "n STORE 1 +FLAGS (\\seen)", "o STORE 1 FLAGS (\\Seen \\Seen)", "p EXAMINE INBOX", "q STORE 1 +FLAGS (\\Flagged)",
        "r STORE 1 +FLAGS (bad\"kw)", "s STORE 1 +FLAGS (\\*)"]},
    {"name": "search", "about": "SEARCH keys, RETURN, $, charsets", "steps": S + [
        "a SELECT INBOX", "b SEARCH ALL", "c SEARCH SEEN", "d SEARCH UNSEEN", "e UID SEARCH ALL", "f SEARCH SUBJECT message",
        "g SEARCH OR SEEN SUBJECT 2", "h SEARCH NOT 1", "i SEARCH 2:*", "j SEARCH UID 2", "k SEARCH FROM alice",
        "l SEARCH HEADER Message-ID m2", "m SEARCH BODY Hello", "n SEARCH TEXT nothing", "o SEARCH LARGER 10",
        "p SEARCH SMALLER 10", "q SEARCH BEFORE 1-Jan-2000", "r SEARCH SENTON 7-Feb-1994", "s SEARCH ON 7-Feb-1994",
        "t SEARCH RETURN () ALL", "u SEARCH RETURN (MIN MAX COUNT) ALL", "v SEARCH RETURN (ALL) 2:3",
        "w SEARCH RETURN (SAVE) SEEN", "x FETCH $ UID", "y SEARCH $", "z UID SEARCH RETURN (COUNT) UNSEEN",
        "aa SEARCH CHARSET US-ASCII ALL", "ab SEARCH CHARSET UTF-8 SUBJECT {5}\r\nméss", "ac SEARCH KEYWORD kw",
        "ad SEARCH UNKEYWORD kw", "ae SEARCH (SEEN UNSEEN)", "af SEARCH 5", "ag SEARCH RETURN (MIN) 5",
        "ah SEARCH NEW", "ai SEARCH RECENT", "aj SEARCH OLD", "ak SEARCH SENTBEFORE 32-Jan-2000",
        "al SEARCH MODSEQ 1", "am SEARCH CHARSET ISO-8859-1 SUBJECT message", "an SEARCH SUBJECT \"\""]},
    {"name": "copy-move", "about": "COPY/MOVE/UID variants and COPYUID", "steps": S + [
        "a SELECT INBOX", "b COPY 1:2 Trash", "c UID COPY 3 Trash", "d COPY 1 nonexistent", "e MOVE 1 Junk",
        "f UID MOVE 3 Junk", "g FETCH 1:* UID", "h COPY 1 INBOX", "i MOVE 1 INBOX", "j STATUS Junk (MESSAGES)",
        "k COPY 1:* Trash", "l UID COPY 100:200 Trash", "m UID MOVE 100:200 Trash", "n EXAMINE INBOX",
        "o MOVE 1 Trash", "p COPY 1 Trash"]},
    {"name": "expunge", "about": "EXPUNGE, UID EXPUNGE, CLOSE expunging", "steps": S + seed(count=5)[3:] + [
        "a SELECT INBOX", "b STORE 2,4 +FLAGS.SILENT (\\Deleted)", "c EXPUNGE", "d STORE 1 +FLAGS.SILENT (\\Deleted)",
        "e UID EXPUNGE 2:3", "f UID EXPUNGE 1", "g FETCH 1:* UID", "h STORE 1 +FLAGS.SILENT (\\Deleted)", "i CLOSE",
        "j STATUS INBOX (MESSAGES)", "k EXAMINE INBOX", "l EXPUNGE"]},
    {"name": "multi-session", "about": "other session's APPEND/STORE/EXPUNGE at NOOP", "steps": S + [
        "a SELECT INBOX", "C2 b SELECT INBOX", append("C2 c", "INBOX", 4), "d NOOP",
        "C2 e STORE 1 +FLAGS (\\Flagged)", "f NOOP", "C2 g STORE 2 +FLAGS.SILENT (\\Deleted)", "C2 h EXPUNGE", "i NOOP",
        "C2 j STORE 1 +FLAGS (\\Deleted)", "C2 k EXPUNGE", "l FETCH 1 FLAGS", "m STORE 1 +FLAGS (\\Seen)",
        "n SEARCH ALL", "o UID FETCH 1:* FLAGS", "p COPY 1 Trash", "q NOOP", "r FETCH 1:* UID"]},
    {"name": "expunged-fetch", "about": "RFC 2180 §4.1: FETCH of a message another session expunged", "steps": S + [
        "a SELECT INBOX", "C2 b SELECT INBOX", "C2 c STORE 2 +FLAGS.SILENT (\\Deleted)", "C2 d EXPUNGE",
        "e FETCH 2 (FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])", "f FETCH 1:3 UID", "g STORE 2 +FLAGS (\\Seen)",
        "h UID FETCH 2 FLAGS", "i SEARCH ALL", "j COPY 2 Trash", "k MOVE 2 Trash", "l NOOP", "m FETCH 1:* UID"]},
    {"name": "expunged-copy", "about": "RFC 2180 §4.4/§4.2: COPY, MOVE, STORE, SEARCH over a message expunged elsewhere", "steps": S + seed(count=4)[3:] + [
        "a SELECT INBOX", "C2 b SELECT INBOX", "C2 c STORE 2 +FLAGS.SILENT (\\Deleted)", "C2 d EXPUNGE",
        "e COPY 2 Trash", "f COPY 1:3 Trash", "g MOVE 2 Junk", "h STORE 2:3 +FLAGS (\\Flagged)",
        "i SEARCH FLAGGED", "j SEARCH SUBJECT message", "k FETCH 2:3 RFC822.SIZE", "l NOOP", "m STATUS Trash (MESSAGES)",
        "C2 n STORE 1 +FLAGS.SILENT (\\Deleted)", "C2 o EXPUNGE", "p UID COPY 1:* Trash", "q UID MOVE 1 Junk",
        "r UID STORE 1 +FLAGS (\\Seen)", "s UID SEARCH ALL", "t NOOP"]},
    {"name": "idle", "about": "IDLE sees another session's changes", "steps": S + [
        "a SELECT INBOX", "!idle", append("C2 b", "INBOX", 4), "!sleep 300", "!read",
        "C2 c SELECT INBOX", "C2 d STORE 1 +FLAGS (\\Flagged)", "!sleep 300", "!read",
        "C2 e STORE 2 +FLAGS.SILENT (\\Deleted)", "C2 f EXPUNGE", "!sleep 300", "!read", "!done",
        "g IDLE", "!raw NOTDONE\r\n", "h NOOP"]},
    {"name": "literals", "about": "literal forms, long lines, 8-bit", "steps": [
        "a CREATE {3}\r\nabc", "b CREATE {3+}\r\ndef", "c LIST \"\" {1+}\r\n*",
        "d APPEND INBOX {70000+}\r\n" + BIG, "e STATUS INBOX (MESSAGES SIZE)",
        "f NOOP " + "x" * 70000, "g NOOP", "h CREATE été", "i SELECT INBOX\xff",
        "j LOGIN {3}\r\nabc {3}\r\ndef", "k CREATE {-1}",
        "m CREATE \"a\\\"b\"", "n CREATE \"a\\qb\"", "o CREATE ~{3}\r\nabc", "p LIST \"\" \"é*\"",
        "q SELECT INBOX\x00", "r NOOP", "s CREATE {99999999999999999999}"]},
    {"name": "delete-selected", "about": "DELETE / RENAME of the selected mailbox, own and other session", "steps": seed("Sent", 2) + [
        "a SELECT Sent", "b DELETE Sent", "c FETCH 1 FLAGS", "d NOOP", "e SEARCH ALL", "f CLOSE", "g CREATE box",
        append("h", "box", 1), "i SELECT box", "C2 j DELETE box", "k NOOP", "l FETCH 1 FLAGS"]},
    {"name": "auth", "about": "LOGIN/AUTHENTICATE forms", "login": False, "timeout": 8, "steps": [
        "a LOGIN {6}\r\nnobody {4}\r\npass", "b AUTHENTICATE PLAIN", "*", "c AUTHENTICATE PLAIN =",
        "d LOGIN \"cmp_x\" \"pass\"", "e AUTHENTICATE PLAIN AGNtcF94AHdyb25n", "f NOOP", "g LOGOUT"]},
    {"name": "idle-states", "about": "IDLE outside SELECTED, commands during IDLE", "steps": [
        "!idle", "!raw a NOOP\r\n", "!raw DONE\r\n", "b SELECT INBOX", "!idle", "!raw done\r\n", "c NOOP",
        "!idle", "!raw LOGOUT\r\n", "d NOOP"]},
    {"name": "logout", "about": "LOGOUT while selected", "steps": S + ["a SELECT INBOX", "b LOGOUT"]},
    {"name": "namespace-enable", "about": "NAMESPACE, ENABLE, CHECK", "steps": [
        "a NAMESPACE", "b ENABLE CONDSTORE", "c ENABLE FOO", "d ENABLE UTF8=ACCEPT", "e ENABLE QRESYNC",
        "f SELECT INBOX", "g CHECK", "h FETCH 1:* MODSEQ"]},
]

# Failed logins make Dovecot delay later logins from the same address: those scenarios go last.
REV1.sort(key=lambda s: s["name"] in ("any-state", "auth"))

REV2 = [
    dict(s, name="rev2-" + s["name"], steps=["r2 ENABLE IMAP4rev2"] + s["steps"])
    for s in REV1
    if s["name"] not in ("any-state",)
]
