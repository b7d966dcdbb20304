"""The command the console gives to continue a stopped session works when pasted: after Escape
it is the whole command (not 'resume with --resume'), and it keeps the session's stimulus set
(without it the resumed run would generate the full-resolution twins in the trials)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from fovea_cli.main import build_parser
from protocol import load_protocol
from study.session import SessionConfig, run_session
from study.session_tracker import fetch_command
from tests.study.conftest import simulated_session, small_protocol_dict, write_toml


def _parsed(command: str):
    words = shlex.split(command)
    assert words[0] == "fovea"
    return build_parser().parse_args(words[1:])


def test_the_continue_command_keeps_the_stimulus_set_and_scenes(tmp_path):
    protocol = write_toml(small_protocol_dict(), tmp_path / "my study.toml")
    config = SessionConfig(
        loaded=load_protocol(protocol),
        data_dir=tmp_path / "data",
        participant="01",
        session="2",
        tracker="dummy",
        observer="human",
        stimulus_set=Path("stimulus sets/pilot"),
        scenes="photos",
        fullscreen=False,
    )
    args = _parsed(fetch_command(config))
    assert (args.participant, args.session, args.tracker) == ("01", "2", "dummy")
    assert args.stimulus_set == "stimulus sets/pilot" and args.scenes == "photos"
    assert args.resume and args.windowed and Path(args.protocol) == protocol
    simulated = simulated_session(
        protocol, tmp_path / "data", stimulus_set=Path("set"), full_window=True
    )
    args = _parsed(fetch_command(simulated))
    assert args.stimulus_set == "set" and args.full_window and args.resume


@pytest.mark.display
def test_after_escape_the_console_gives_the_command_that_continues(
    virtual_x, tmp_path, monkeypatch
):
    """The experimenter confirms Escape in trial 2 (seed 3): the line names the status and the
    whole command, which parses as a resume of the same session."""
    from study.presenter import QuitRequested
    from study.trial import TrialRunner

    run = TrialRunner.run

    def quit_in_trial_2(self, *, plan, trial, drift_check=False):
        if trial == 2:
            raise QuitRequested()
        return run(self, plan=plan, trial=trial, drift_check=drift_check)

    monkeypatch.setattr(TrialRunner, "run", quit_in_trial_2)
    protocol = write_toml(small_protocol_dict(trials=4), tmp_path / "small.toml")
    print("seed 3")
    lines: list[str] = []
    config = simulated_session(protocol, tmp_path / "data", quiet=False)
    result = run_session(config, log=lines.append)
    assert result.status == "quit by the experimenter (Escape)" and result.n_rows == 1
    (said,) = [line for line in lines if "quit by the experimenter" in line]
    head, command = said.split("; continue with: ")
    assert head == f"{result.paths.session_dir}: quit by the experimenter (Escape)"
    args = _parsed(command)
    assert args.resume and args.data == str(tmp_path / "data")
    # The start said which folder the labels chose, and the resume says how far it got.
    assert f"new session {result.paths.session_dir}: 4 responses planned" in lines
    monkeypatch.setattr(TrialRunner, "run", run)
    lines.clear()
    again = run_session(
        simulated_session(protocol, tmp_path / "data", resume=True), log=lines.append
    )
    assert again.completed
    assert f"resuming {result.paths.session_dir} after trial 1 (1 of 4 responses)" in lines


@pytest.mark.display
def test_a_complete_session_resumed_says_so_once(virtual_x, tmp_path, capsys):
    """`--resume` of a complete session printed 'DIR: already complete' and then the command's
    own status line saying it again (as `--close` did with 'closed incomplete')."""
    from fovea_cli.main import main

    protocol = write_toml(small_protocol_dict(trials=2), tmp_path / "small.toml")
    argv = ["simulate", str(protocol), "--data", str(tmp_path / "data"), "--seed", "3"]
    print("seed 3")
    assert main(argv) == 0
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("already complete") == 1, printed
