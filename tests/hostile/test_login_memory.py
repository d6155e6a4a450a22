"""Password checks keep a fixed amount of memory: the hashing threads' argon2 blocks (2 x 19 MiB),
reused for every check, whatever the number of logins, failures or distinct accounts. Before,
each check's 19 MiB was left in malloc arenas: 8 failed logins took RSS from 19 to 176 MiB."""

import imaplib

from conftest import PASSWORD, assert_responsive

USERS = [f"mem{i}" for i in range(12)]


def test_logins_do_not_grow_memory(make_server):
    server = make_server(users=USERS)
    rss0 = server.rss_kib()
    for i, name in enumerate(USERS * 2):
        c = imaplib.IMAP4(*server.imap)
        try:
            # Every other login fails: failures are never cached, so each one hashes.
            c.login(name, PASSWORD + ("" if i % 2 else "wrong"))
        except imaplib.IMAP4.error:
            pass
        c.logout()
    growth = server.rss_kib() - rss0
    print(f"RSS grew {growth} KiB over {len(USERS) * 2} logins of {len(USERS)} accounts")
    # Two threads' blocks (2 x 19 MiB) and slack; the old behaviour exceeded 150 MiB.
    assert growth < 48 * 1024, f"RSS grew {growth} KiB"
    assert_responsive(server)
