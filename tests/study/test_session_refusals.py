"""What ``fovea run`` says when an experimenter's labels name the wrong session: the same
participant again without ``--session`` after a complete session, and a ``--resume`` or
``--close`` of a mistyped participant. A real session is on disk; each command is refused with
one ``error:`` line (exit 2) before a window opens, and writes no session file."""

from __future__ import annotations

import pytest

from study.session import run_session
from tests.study.conftest import simulated_session, small_protocol_dict, write_toml

pytestmark = pytest.mark.display


@pytest.fixture(scope="module")
def lab(virtual_x, tmp_path_factory):
    """Participant 01's complete session 1 in a data folder."""
    root = tmp_path_factory.mktemp("refusals")
    protocol = write_toml(small_protocol_dict(trials=2), root / "small.toml")
    data = root / "data"
    result = run_session(simulated_session(protocol, data, participant="01"))
    assert result.completed
    return protocol, data


def _refused(lab, capsys, *options) -> str:
    from fovea_cli.main import main

    protocol, data = lab

    def files():  # sourcedata/ included: a refused resume left the folders of its lock there
        return sorted(p.relative_to(data) for p in data.rglob("*"))

    before = files()
    args = ["run", str(protocol), "--data", str(data), "--tracker", "sim", "--windowed"]
    assert main([*args, "--allow-virtual-display", *options]) == 2
    assert files() == before
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ")
    return line


def test_a_complete_session_run_again_names_the_next_session(lab, capsys):
    line = _refused(lab, capsys, "--participant", "01")
    assert line == (
        f"error: session {lab[1]}/sub-01/ses-1 already exists; it is complete: for this "
        "participant's next session give --session 2 (existing data are never overwritten)"
    )


def test_a_resume_of_a_mistyped_participant_lists_the_sessions_there(lab, capsys):
    line = _refused(lab, capsys, "--participant", "1", "--resume")
    assert line == (
        f"error: nothing to resume: there is no session {lab[1]}/sub-1/ses-1 ({lab[1]} holds: "
        "--participant 01 --session 1)"
    )


def test_a_close_of_a_missing_session_says_close_and_an_empty_folder_says_check_data(
    lab, capsys, tmp_path
):
    line = _refused(lab, capsys, "--participant", "01", "--session", "2", "--close")
    assert line.startswith(f"error: nothing to close: there is no session {lab[1]}/sub-01/ses-2")
    empty = (lab[0], tmp_path / "elsewhere")
    line = _refused(empty, capsys, "--participant", "01", "--resume")
    assert line.endswith(f"({tmp_path / 'elsewhere'} holds no session: check --data)")


def test_another_task_in_the_same_session_folder_is_refused(lab, capsys):
    """A protocol with another ``task`` (e.g. a copy renamed for a second experiment) run for the
    same participant and session: its trials' shown images (``images/trial-0001_*.png``) and EDF
    copies (named by participant, session and run) would have overwritten the first task's
    (seen: ``fovea simulate`` of such a copy replaced sourcedata/.../images/trial-0001_full.png).
    Without --allow-virtual-display: a session that started would be refused for the display
    only after writing its files, not hang waiting for a participant's keys."""
    from fovea_cli.main import main

    protocol, data = lab
    changed = small_protocol_dict(trials=2)
    changed["task"] = "second"
    other = write_toml(changed, protocol.parent / "second.toml")
    before = sorted(data.rglob("*"))
    args = ["run", str(other), "--data", str(data), "--tracker", "sim", "--participant", "01"]
    assert main(args) == 2
    assert sorted(data.rglob("*")) == before
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"error: session {data}/sub-01/ses-1 already holds task 'fovea2afc': task 'second' "
        f"there would overwrite its shown images and EDF copies under "
        f"{data}/sourcedata/sub-01/ses-1/eyetrack (named by trial and run, not task); give it "
        "another session: --session 2"
    )
