"""Escape with confirmation and key handling on the real window (keys through XTest)."""

from __future__ import annotations

import threading

import pytest

from protocol import validate_protocol
from study.presenter import Presenter, QuitRequested, SimClock
from tests.study.conftest import small_protocol_dict
from tests.study.trial_rig import press_keys

pytestmark = pytest.mark.display


@pytest.fixture(scope="module")
def presenter(virtual_x):
    from psychopy import visual

    protocol = validate_protocol(small_protocol_dict(), source="test")
    win = visual.Window(
        size=(640, 480), units="pix", color=(0, 0, 0), fullscr=False, checkTiming=False
    )
    view = Presenter(
        protocol=protocol, win=win, clock=SimClock(), tracker=None, physio=None, simulated=False
    )
    yield view
    win.close()


def _type_later(display: str, win, keys: list[str], delay_s: float = 0.4) -> threading.Thread:
    def run():
        press_keys(display, win, keys, delay_s=delay_s)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_escape_then_no_continues_and_space_dismisses(presenter, virtual_x):
    thread = _type_later(virtual_x, presenter.win, ["Escape", "n", "space"])
    presenter.text_screen("Press SPACE", phase="instructions")
    thread.join()
    assert presenter.stats.frames > 0


def test_escape_then_yes_quits(presenter, virtual_x):
    thread = _type_later(virtual_x, presenter.win, ["Escape", "y"])
    with pytest.raises(QuitRequested):
        presenter.text_screen("Press SPACE", phase="instructions")
    thread.join()


def test_frames_are_counted_in_whole_frames(presenter):
    assert (
        presenter.frames_for(1.0) == 60
        and presenter.frames_for(0.01) == 1
        and presenter.frames_for(0) == 0
    )
    assert presenter.deg_to_pix(0.0, 0.0) == (0.0, 0.0)
    x, y = presenter.deg_to_pix(1.0, 1.0)
    ppd = presenter.display.pixels_per_degree
    assert x == pytest.approx(ppd, rel=0.01) and y == pytest.approx(ppd, rel=0.01)


@pytest.mark.parametrize(("key", "accepted"), [("a", True), ("r", False)])
def test_the_operator_is_asked_about_a_validation_outside_the_limits(
    presenter, virtual_x, key, accepted
):
    from study.operator import validation_question
    from study.trackers.base import CalibrationResult
    from study.trackers.eyelink_setup import AcceptanceLimits

    said = []
    ask = validation_question(
        presenter=presenter,
        say=said.append,
        limits=AcceptanceLimits(avg_error_deg=1.0, max_error_deg=2.0, drift_offset_deg=1.0),
    )
    thread = _type_later(virtual_x, presenter.win, [key])
    result = CalibrationResult(avg_error_deg=1.4, max_error_deg=2.9, time_s=0.0, accepted=False)
    assert ask(result) is accepted
    thread.join()
    assert "1.40" in said[0] and "limits 1.00 / 2.00" in said[0]
