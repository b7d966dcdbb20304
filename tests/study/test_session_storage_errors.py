"""A full disk (or a read-only data folder) in the middle of a session: one error line that says
the logged trials are safe and how to continue, not a traceback; ``--resume`` then completes the
session with every trial once."""

from __future__ import annotations

import dataclasses
import errno
import json

import pytest

import study.trial.runner as trial_runner
from generator.errors import FoveaError
from protocol.session_data import read_rows
from study.session import run_session
from tests.study.conftest import simulated_session, small_protocol_dict, write_toml

pytestmark = pytest.mark.display


@pytest.mark.parametrize(
    ("code", "text"),
    [(errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system")],
)
def test_a_full_disk_mid_session_is_one_line_and_the_session_resumes(
    virtual_x, tmp_path, monkeypatch, code, text
):
    protocol = write_toml(small_protocol_dict(trials=4), tmp_path / "p.toml")
    config = simulated_session(protocol, tmp_path / "data")
    save = trial_runner.save_shown_images

    def fill_up_at_trial_3(*, images_dir, trial, **images):
        if trial == 3:
            raise OSError(code, text, str(images_dir / "trial-0003_foveated.png"))
        return save(images_dir=images_dir, trial=trial, **images)

    monkeypatch.setattr(trial_runner, "save_shown_images", fill_up_at_trial_3)
    with pytest.raises(FoveaError, match=f"{text}: .*trial-0003.*continue with --resume"):
        run_session(config)
    beh_tsv = tmp_path / "data" / "sub-sim01" / "ses-1" / "beh"
    (path,) = beh_tsv.glob("*_beh.tsv")
    assert [r["trial"] for r in read_rows(path)] == ["1", "2"]

    monkeypatch.setattr(trial_runner, "save_shown_images", save)  # space freed
    result = run_session(dataclasses.replace(config, resume=True))
    assert result.completed
    rows = read_rows(path)
    assert [r["trial"] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]


def test_other_os_errors_keep_their_traceback(virtual_x, tmp_path, monkeypatch):
    protocol = write_toml(small_protocol_dict(trials=4), tmp_path / "p.toml")
    config = simulated_session(protocol, tmp_path / "data", seed=None)

    def lost_device(**_):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(trial_runner, "save_shown_images", lost_device)
    with pytest.raises(OSError, match="Input/output error"):
        run_session(config)


def test_the_sidecar_says_completed_only_after_the_events_file(virtual_x, tmp_path, monkeypatch):
    """A run stopped while writing its end records is not marked complete: the resume writes
    them (a completed session is never rewritten)."""

    import study.session_window as session_window

    protocol = write_toml(small_protocol_dict(trials=4), tmp_path / "p.toml")
    config = simulated_session(protocol, tmp_path / "data")
    write_events = session_window.write_events

    def disk_full(**_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(session_window, "write_events", disk_full)
    with pytest.raises(FoveaError, match="continue with --resume"):
        run_session(config)
    (beh_json,) = (tmp_path / "data").glob("sub-*/ses-*/beh/*_beh.json")
    assert not json.loads(beh_json.read_text())["completed"]

    monkeypatch.setattr(session_window, "write_events", write_events)
    assert run_session(dataclasses.replace(config, resume=True)).completed
    assert list(beh_json.parent.glob("*_events.tsv"))


def test_a_read_only_data_folder_is_one_line_before_anything_runs(tmp_path, monkeypatch):
    """A data folder copied to a write-protected share (or mounted read-only): taking the
    session's lock is its first write, and fails with the same one line, not a traceback."""
    import study.session

    class ReadOnlyLock:
        def __init__(self, path, **_):
            self.path = path

        def __enter__(self):
            raise OSError(errno.EROFS, "Read-only file system", str(self.path.parent))

        def __exit__(self, *_):
            return False

    monkeypatch.setattr(study.session, "SessionLock", ReadOnlyLock)
    protocol = write_toml(small_protocol_dict(trials=4), tmp_path / "p.toml")
    config = simulated_session(protocol, tmp_path / "data", seed=None)
    with pytest.raises(FoveaError, match=r"Read-only file system: .*ses-1\); nothing was written"):
        run_session(config)


def test_a_file_in_the_way_of_the_screenshots_folder_stops_before_the_session_starts(
    virtual_x, tmp_path, capsys
):
    """``--screenshots notes.txt`` (a file): one error line before the window opens; before, the
    error came with the window open (the run record left without an end, the session folder
    created so that a corrected rerun was refused, and an X IO error at exit)."""
    from fovea_cli.main import main

    protocol = write_toml(small_protocol_dict(trials=4), tmp_path / "p.toml")
    (tmp_path / "notes.txt").write_text("not a folder")
    data = tmp_path / "data"
    argv = ["simulate", str(protocol), "--data", str(data), "--quiet"]
    assert main([*argv, "--screenshots", str(tmp_path / "notes.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: {tmp_path / 'notes.txt'}: a file is in the way (a folder must go there)"
    ]
    assert not (data / "sub-sim01").exists()  # nothing of the session was written
    assert main(argv) == 0  # the corrected command starts the session, no --resume needed


def test_ctrl_c_mid_session_says_how_to_continue_and_the_resume_completes(
    virtual_x, tmp_path, monkeypatch, capsys
):
    """Ctrl-C in the terminal during `fovea simulate` (or run): exit status 130 and one line that
    says the logged trials are kept and how to continue (before: a bare "interrupted"); the
    suggested command then completes the session with every trial once."""
    from fovea_cli.main import main

    protocol = write_toml(small_protocol_dict(trials=4), tmp_path / "p.toml")
    argv = ["simulate", str(protocol), "--data", str(tmp_path / "data"), "--quiet"]
    save = trial_runner.save_shown_images

    def ctrl_c_at_trial_3(*, images_dir, trial, **images):
        if trial == 3:
            raise KeyboardInterrupt
        return save(images_dir=images_dir, trial=trial, **images)

    monkeypatch.setattr(trial_runner, "save_shown_images", ctrl_c_at_trial_3)
    assert main(argv) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "interrupted; the trials logged so far are kept: continue with the same command and "
        "--resume"
    )
    (path,) = (tmp_path / "data" / "sub-sim01" / "ses-1" / "beh").glob("*_beh.tsv")
    assert [r["trial"] for r in read_rows(path)] == ["1", "2"]
    monkeypatch.setattr(trial_runner, "save_shown_images", save)
    assert main([*argv, "--resume"]) == 0
    rows = read_rows(path)
    assert [r["trial"] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]


def test_a_tracker_that_cannot_be_made_closes_the_window_and_says_why(
    virtual_x, tmp_path, monkeypatch
):
    """The tracker fails to be made after the window opened (an EyeLink library missing on the
    lab PC): the error propagates, the window is closed (left open it ended the process with an
    X error), the run record says why, and a resume runs the session."""

    from psychopy import visual

    import study.trackers as trackers
    from study.session import run_session
    from tests.study.conftest import simulated_session, small_protocol_dict, write_toml

    protocol = write_toml(small_protocol_dict(trials=2), tmp_path / "p.toml")
    config = simulated_session(protocol, tmp_path / "data")
    real = trackers.make_tracker

    def no_library(*args, **kwargs):
        raise FoveaError("pylink is not installed: pip install sr-research-pylink")

    monkeypatch.setattr(trackers, "make_tracker", no_library)
    with pytest.raises(FoveaError, match="pylink is not installed"):
        run_session(config)
    assert not [w for w in visual.window.openWindows if w() is not None]
    (beh_json,) = (tmp_path / "data").rglob("*_beh.json")
    run = json.loads(beh_json.read_text())["runs"][-1]
    assert (
        run["status"]
        == "stopped before the first trial: pylink is not installed: pip install sr-research-pylink"
    )

    monkeypatch.setattr(trackers, "make_tracker", real)
    assert run_session(dataclasses.replace(config, resume=True)).completed
