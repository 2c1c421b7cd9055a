"""`python -m tonebridge.testing.mutation --since REV`: the lines a file changed since a git
revision (the mutants on the others are skipped)."""

import subprocess

from tonebridge.testing.mutation import changed_lines


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_changed_lines_are_the_new_and_edited_ones(tmp_path):
    _git(tmp_path, "init", "-q")
    f = tmp_path / "m.py"
    f.write_text("a = 1\nb = 2\nc = 3\nd = 4\ne = 5\n")
    _git(tmp_path, "add", "m.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    # lines 1-2 replaced by one line (1), a line inserted after line 4 (now line 4)
    f.write_text("b = 20\nc = 3\nd = 4\nd2 = 44\ne = 5\n")
    assert changed_lines("m.py", "HEAD", tmp_path) == {1, 4}
    # a deletion alone leaves no new line to mutate
    f.write_text("a = 1\nb = 2\nd = 4\ne = 5\n")
    assert changed_lines("m.py", "HEAD", tmp_path) == set()
