"""`mailkeep config check FILE`: exit 0 and "ok" for a valid file, exit 1 and errors naming the
key and its line otherwise, without starting anything."""

from conftest import BIN
import subprocess


def check(tmp_path, text):
    f = tmp_path / "mailkeep.toml"
    f.write_text(text)
    return subprocess.run([BIN, "config", "check", str(f)], text=True, capture_output=True,
                          timeout=30)


def test_valid_file(tmp_path):
    r = check(tmp_path, 'version = 1\ndata_dir = "/nonexistent/never/created"\n'
                        '[imap]\nlisten = ["127.0.0.1:0"]\n[limits]\nmax_line_length = 8192\n')
    assert (r.returncode, r.stdout.strip().splitlines()[-1]) == (0, "ok"), r.stdout + r.stderr
    assert not (tmp_path / "never").exists()


def test_empty_file_is_valid(tmp_path):
    r = check(tmp_path, "")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_unknown_key_names_key_and_line(tmp_path):
    r = check(tmp_path, '[imap]\nlisten = ["127.0.0.1:0"]\n\n[limits]\nmax_line_lenght = 8\n')
    assert r.returncode == 1, r.stdout + r.stderr
    assert "max_line_lenght" in r.stdout and "line 5" in r.stdout, r.stdout


def test_newer_version_is_refused(tmp_path):
    r = check(tmp_path, "version = 2\n")
    assert r.returncode == 1
    assert "line 1" in r.stdout and "version 2 is newer" in r.stdout, r.stdout


def test_bad_values_are_errors(tmp_path):
    for text in ('[log]\nformat = "xml"\n', '[auth]\ntrusted_networks = ["10.0.0.0/99"]\n',
                 "[limits]\nmax_line_length = -1\n", "[imap\n"):
        r = check(tmp_path, text)
        assert r.returncode == 1 and "error" in r.stdout, (text, r.stdout, r.stderr)


def test_missing_file(tmp_path):
    r = subprocess.run([BIN, "config", "check", str(tmp_path / "none.toml")], text=True,
                       capture_output=True, timeout=30)
    assert r.returncode != 0 and "none.toml" in r.stderr
