"""Escape with confirmation and key handling on the real window (keys through XTest)."""

from __future__ import annotations

import threading
import time

import pytest

from protocol import validate_protocol
from study.presenter import Presenter, QuitRequested, SimClock
from tests.study.conftest import small_protocol_dict

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
        from Xlib import XK, X
        from Xlib import display as xdisplay
        from Xlib.ext import xtest

        connection = xdisplay.Display(display)
        left, top = win.winHandle.get_location()
        xtest.fake_input(connection, X.MotionNotify, x=left + 100, y=top + 100)
        for key in keys:
            time.sleep(delay_s)
            code = connection.keysym_to_keycode(XK.string_to_keysym(key))
            xtest.fake_input(connection, X.KeyPress, code)
            xtest.fake_input(connection, X.KeyRelease, code)
            connection.sync()
        connection.close()

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
