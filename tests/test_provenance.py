"""The kit's version names the code: the git commit of a checkout (``.dirty`` once tracked files
change), printed by ``fovea --version`` and listed per session by the report."""

from __future__ import annotations

import subprocess

import pytest

from analysis.report_files import session_software
from fovea_cli.main import main
from protocol.provenance import git_revision, software_version


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_git_revision_names_the_commit_and_a_changed_tree(tmp_path):
    assert git_revision(tmp_path) is None  # not a checkout
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "--short=7", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert git_revision(tmp_path) == f"g{head}"
    (tmp_path / "new.txt").write_text("untracked files do not count")
    assert git_revision(tmp_path) == f"g{head}"
    (tmp_path / "a.txt").write_text("two")
    assert git_revision(tmp_path) == f"g{head}.dirty"


def test_fovea_version_prints_what_sessions_record(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"fovea {software_version()}"


def test_the_report_lists_every_version_that_ran_a_session():
    sidecar = {
        "software_version": "0.1.0+gaaaaaaa",
        "runs": [
            {"software_version": "0.1.0+gaaaaaaa"},
            {"software_version": "0.1.0+gbbbbbbb.dirty"},
            {},  # a run recorded before runs carried the version
        ],
    }
    assert session_software(sidecar) == "0.1.0+gaaaaaaa, 0.1.0+gbbbbbbb.dirty"
    assert session_software({"software_version": "0.1.0"}) == "0.1.0"
    assert session_software(None) == ""
