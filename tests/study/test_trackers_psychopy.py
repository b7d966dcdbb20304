"""EyeLink dummy mode and the calibration graphics in a real PsychoPy window (under Xvfb).

Input comes through the X server (XTest), the way a real keyboard and mouse reach PsychoPy.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from generator.errors import FoveaError
from generator.geometry import default_display
from protocol import TrackerSettings
from study.trackers import make_tracker

pytestmark = pytest.mark.display

WINDOW_PX = (800, 600)


@pytest.fixture(scope="module")
def x_display(virtual_x):
    """The X display: $DISPLAY, or the suite's Xvfb (``virtual_x`` in conftest.py)."""
    return virtual_x


@pytest.fixture(scope="module")
def win(x_display):
    from psychopy import visual

    window = visual.Window(
        size=WINDOW_PX,
        units="pix",
        color=(0.0, 0.0, 0.0),
        fullscr=False,
        allowGUI=False,
        checkTiming=False,
    )
    yield window
    window.close()


@pytest.fixture
def xtest(x_display):
    from Xlib import display as xlib_display

    connection = xlib_display.Display(x_display)
    yield connection
    connection.close()


def _pump(win, seconds=0.1):
    """Let pyglet deliver the X events to PsychoPy."""
    from psychopy import event

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        win.winHandle.dispatch_events()
        time.sleep(0.01)
    return event


def _move_mouse(xtest, win, x_px, y_px):
    from Xlib import X
    from Xlib.ext import xtest as xtest_ext

    left, top = win.winHandle.get_location()
    xtest_ext.fake_input(xtest, X.MotionNotify, x=int(round(left + x_px)), y=int(round(top + y_px)))
    xtest.sync()
    _pump(win)


def _focus(xtest, win):
    """Give the window the keyboard focus (there is no window manager under Xvfb)."""
    from Xlib import X

    _move_mouse(xtest, win, WINDOW_PX[0] // 2, WINDOW_PX[1] // 2)
    xtest.set_input_focus(win.winHandle._window, X.RevertToParent, X.CurrentTime)
    xtest.sync()


def _press(xtest, key_name, *, shift=False):
    from Xlib import XK, X
    from Xlib.ext import xtest as xtest_ext

    codes = [xtest.keysym_to_keycode(XK.string_to_keysym(key_name))]
    if shift:
        codes.insert(0, xtest.keysym_to_keycode(XK.XK_Shift_L))
    for code in codes:
        xtest_ext.fake_input(xtest, X.KeyPress, code)
    for code in reversed(codes):
        xtest_ext.fake_input(xtest, X.KeyRelease, code)
    xtest.sync()


def test_dummy_mode_sends_messages_and_reads_mouse_gaze(win, xtest, tmp_path):
    start = time.monotonic()
    clock = lambda: time.monotonic() - start  # noqa: E731
    tracker = make_tracker(
        "dummy",
        settings=TrackerSettings(kind="dummy"),
        seed=0,
        clock=clock,
        display=default_display(),
    )
    tracker.open(win=win, session_dir=tmp_path, edf_name="fv0001")
    try:
        assert tracker.el.getDummyMode()  # a real pylink.EyeLink(None)
        assert tracker.calibrate() is None
        assert tracker.drift_correct(x_deg=0.0, y_deg=0.0)
        tracker.start_recording()
        tracker.trial_start(trial=3, variables={"condition": "acuity near", "level": 0.5})
        tracker.message("STIMULUS_ONSET interval=1")
        one_px_deg = 1.0 / default_display().pixels_per_degree
        for x_px, y_px in [(535, 390), (180, 120), (400, 300)]:
            _move_mouse(xtest, win, x_px, y_px)
            sample = tracker.sample()
            # The pointer sits on pixel (x_px, y_px), whose centre is at +0.5 in continuous
            # coordinates; pyglet/PsychoPy report pixel indices, so allow one pixel.
            x_deg, y_deg = tracker.mapper.window_px_to_deg(x_px + 0.5, y_px + 0.5)
            print(f"mouse at ({x_deg:.3f}, {y_deg:.3f}) deg -> {sample}")
            assert sample.valid
            assert sample.x_deg == pytest.approx(x_deg, abs=one_px_deg)
            assert sample.y_deg == pytest.approx(y_deg, abs=one_px_deg)
            assert 0.0 <= sample.time_s <= clock()
        tracker.trial_end(result="ok")
        tracker.stop_recording()
    finally:
        edf = tracker.close(dest_dir=tmp_path)
    assert edf is None  # dummy mode records nothing
    texts = [text for _, text in tracker.messages]
    assert texts[0] == "DISPLAY_COORDS 0 0 799 599"
    start_index = texts.index("TRIALID 3")
    assert texts[start_index + 1 :] == [
        "!V TRIAL_VAR condition acuity near",
        "!V TRIAL_VAR level 0.5",
        "STIMULUS_ONSET interval=1",
        "!V TRIAL_VAR outcome ok",
        "TRIAL_RESULT 0",  # SR's integer code (TRIAL_OK), as Data Viewer expects
    ]


def _screenshot(display) -> np.ndarray:
    """Draw the calibration screen into the back buffer and read it (before any flip)."""
    display.draw()
    frame = np.asarray(display.win.getMovieFrame(buffer="back"), dtype=float)
    display.win.movieFrames.clear()
    return frame


def _dark_pixels(frame: np.ndarray) -> np.ndarray:
    return frame.mean(axis=2) < 40


def _dark_centroid(frame: np.ndarray) -> tuple[float, float, int]:
    """Centroid (continuous window px, pixel centres at +0.5) and count of dark pixels."""
    ys, xs = np.nonzero(_dark_pixels(frame))
    assert len(xs), "nothing drawn"
    return float(xs.mean()) + 0.5, float(ys.mean()) + 0.5, len(xs)


def test_calibration_display_draws_pylink_targets_where_asked(win):
    from study.graphics.calibration import PsychoPyCalibrationDisplay
    from study.trackers.eyelink import import_pylink

    pylink = import_pylink()
    shots = []

    class Recording(PsychoPyCalibrationDisplay):
        # pylink polls for keys while the target is up: photograph the screen then.
        def get_input_key(self):
            if self.target_px is not None and not shots:
                shots.append((self.target_px, _screenshot(self)))
            return super().get_input_key()

    display = Recording(win=win, target_outer_px=30, target_inner_px=8)
    el = pylink.EyeLink(None)
    pylink.closeGraphics()
    pylink.openGraphicsEx(display)
    try:
        # In dummy mode pylink shows the drift-check target, polls once, then gives up with
        # "Invalid tracker mode": enough to see it drive our display.
        with pytest.raises(RuntimeError, match="tracker mode"):
            el.doDriftCorrect(200, 150, 1, 1)
    finally:
        pylink.closeGraphics()
        el.close()
    (target, frame) = shots[0]
    assert target == (200.0, 150.0)
    x, y, n_dark = _dark_centroid(frame)
    print(f"target drawn at ({x:.2f}, {y:.2f}), {n_dark} dark px")
    assert (x, y) == pytest.approx((200.0, 150.0), abs=0.75)
    # A disc of 30 px with an 8 px hole in the window's grey.
    assert n_dark == pytest.approx(np.pi * (15**2 - 4**2), rel=0.1)
    assert frame[150, 200].mean() == pytest.approx(frame[10, 10].mean(), abs=10)

    # The calibration sequence calls the same hooks directly; check corners and the erase.
    for x_px, y_px in [(40, 40), (760, 560), (400, 300)]:
        display.draw_cal_target(x_px, y_px)
        x, y, _ = _dark_centroid(_screenshot(display))
        assert (x, y) == pytest.approx((x_px, y_px), abs=0.75)
    display.erase_cal_target()
    assert not _dark_pixels(_screenshot(display)).any()


def test_calibration_display_shows_camera_placeholder(win):
    from study.graphics.calibration import PsychoPyCalibrationDisplay

    display = PsychoPyCalibrationDisplay(win=win)
    display.setup_cal_display()
    assert display.setup_image_display(192, 160) == 1
    display.image_title("RIGHT EYE (CR)")
    frame = _screenshot(display)
    assert _dark_pixels(frame).sum() > 200  # the placeholder text is on screen
    for line in range(1, 161):
        display.draw_image_line(192, line, 160, [0] * 192)  # accepted, not drawn
    display.exit_image_display()
    display.exit_cal_display()
    assert not display.image_mode


def _red_pixels(frame: np.ndarray) -> np.ndarray:
    return (frame[..., 0] > 150) & (frame[..., 1] < 90) & (frame[..., 2] < 90)


def test_an_eyelink_alert_is_not_left_on_the_participants_screen(win):
    """pylink's alert_printf ("Calibration aborted", "start_recording failed"...) in red: while
    setup is open it shows until the next target, it is gone when setup exits, and outside setup
    it is only logged (a flip then would replace the session's screen)."""
    from psychopy import visual

    from study.graphics.calibration import PsychoPyCalibrationDisplay

    display = PsychoPyCalibrationDisplay(win=win)
    # Outside setup: the trial's half-drawn frame stays in the back buffer, no flip, no red.
    mark = visual.Rect(win, units="pix", width=40, height=40, fillColor=(-1, -1, -1))
    mark.draw()
    display.alert_printf("start_recording failed. (1)")
    frame = np.asarray(win.getMovieFrame(buffer="back"), dtype=float)
    win.movieFrames.clear()
    assert _dark_pixels(frame).sum() == pytest.approx(40 * 40, rel=0.1)
    assert not _red_pixels(frame).any()
    win.flip()

    display.setup_cal_display()
    display.alert_printf("Calibration aborted")
    assert _red_pixels(_screenshot(display)).sum() > 100  # the operator sees it
    display.clear_cal_display()
    assert _red_pixels(_screenshot(display)).any()  # back in the setup menu: still there
    display.draw_cal_target(400, 300)  # validation starts
    frame = _screenshot(display)
    assert not _red_pixels(frame).any()
    assert _dark_pixels(frame).any()
    display.alert_printf("Validation aborted")
    display.exit_cal_display()
    frame = _screenshot(display)  # what stays up until the session's next screen
    assert not _red_pixels(frame).any()
    assert not _dark_pixels(frame).any()


def test_no_setup_help_flashes_before_a_drift_check_target(win, tmp_path):
    """pylink's doDriftCorrect calls setup_cal_display just before it draws the target: the
    setup's key help ("Eye-tracker setup... Esc: leave setup") was flipped up for a frame under
    the participant's eyes before every drift check. The setup menu still shows it."""
    from study.trackers.eyelink import EyeLinkTracker

    class OverDummyLink(EyeLinkTracker):
        def _connect(self):
            return self._pylink.EyeLink(None)

    settings = TrackerSettings(kind="eyelink", sampling_rate_hz=500, eye="left")
    tracker = OverDummyLink(
        settings=settings, clock=time.monotonic, display=default_display(), max_drift_attempts=1
    )
    tracker.open(win=win, session_dir=tmp_path, edf_name="fv0003")
    frames = []
    try:
        display = tracker.graphics
        real_show = display._show

        def show():  # every frame the calibration display flips, as it is flipped
            frames.append((display.target_px, _screenshot(display)))
            real_show()

        display._show = show
        tracker.drift_check(x_deg=0.0, y_deg=0.0)  # the centre: window px (400, 300)
        assert any(target == (400.0, 300.0) for target, _ in frames)
        for target, frame in frames:
            assert not _dark_pixels(frame)[WINDOW_PX[1] * 2 // 3 :].any(), target
        display.setup_cal_display()  # the setup menu (doTrackerSetup)
        help_rows = _dark_pixels(_screenshot(display))[WINDOW_PX[1] * 2 // 3 :]
        assert help_rows.sum() > 200
        display.exit_cal_display()
    finally:
        tracker.close(dest_dir=tmp_path / "eyetrack")


def test_calibration_display_passes_keys_to_pylink(win, xtest):
    from psychopy import event

    from study.graphics.calibration import PsychoPyCalibrationDisplay

    display = PsychoPyCalibrationDisplay(win=win)
    _focus(xtest, win)
    event.clearEvents()
    for name in ("c", "Return", "Escape", "F1", "Up"):
        _press(xtest, name)
    _press(xtest, "v", shift=True)
    _pump(win)
    keys = display.get_input_key()
    assert display.key_log == [
        (ord("c"), 0),
        (0x0D, 0),
        (0x1B, 0),
        (0x3B00, 0),
        (0x4800, 0),
        (ord("V"), 1),
    ]
    assert len(keys) == 6


def test_eyelink_without_a_tracker_says_what_to_do(win, tmp_path):
    settings = TrackerSettings(kind="eyelink", host_ip="127.0.0.1")
    tracker = make_tracker(
        "eyelink", settings=settings, seed=0, clock=time.monotonic, display=default_display()
    )
    with pytest.raises(FoveaError, match=r"host_ip '127.0.0.1'.*--tracker dummy"):
        tracker.open(win=win, session_dir=tmp_path, edf_name="fv0001")
    with pytest.raises(FoveaError, match="EDF file name"):
        tracker.open(win=win, session_dir=tmp_path, edf_name="much_too_long")


def test_eyelink_code_path_over_a_dummy_link(win, xtest, tmp_path):
    """Everything the EyeLink tracker does, on pylink's dummy connection instead of a tracker:
    configuration commands, calibration graphics handed to pylink, the setup menu (left with
    Esc), trial messages and the EDF transfer (which a dummy link cannot deliver)."""
    from study.trackers.eyelink import EyeLinkTracker

    class OverDummyLink(EyeLinkTracker):
        def _connect(self):
            return self._pylink.EyeLink(None)

        def _open_graphics(self):
            super()._open_graphics()
            real_get_input_key = self.graphics.get_input_key

            def get_input_key():
                # pylink polls for keys while its setup menu is up: the experimenter presses Esc
                # (a real X key event) a few polls in. Exceptions must not cross pylink's C code,
                # so a key that never arrives is reported by returning Esc and noting it.
                polls["n"] += 1
                if polls["n"] == 10:
                    _press(xtest, "Escape")
                if polls["n"] > 3000:
                    polls["gave_up"] = True
                    return [self._pylink.KeyInput(self._pylink.ESC_KEY, 0)]
                return real_get_input_key()

            self.graphics.get_input_key = get_input_key

    polls = {"n": 0, "gave_up": False}
    settings = TrackerSettings(
        kind="eyelink", sampling_rate_hz=500, eye="left", calibration_type="HV5"
    )
    # One setup: the dummy link never validates, and the operator (this test) leaves setup once.
    tracker = OverDummyLink(
        settings=settings, clock=time.monotonic, display=default_display(), max_setup_attempts=1
    )
    tracker.open(win=win, session_dir=tmp_path, edf_name="fv0002")
    try:
        for command in (
            "sample_rate = 500",
            "active_eye = LEFT",
            "calibration_type = HV5",
            "screen_pixel_coords = 0 0 799 599",
            "screen_distance = 600",
        ):
            assert command in tracker.commands
        assert tracker.graphics is not None and tracker.graphics.win is win
        _focus(xtest, win)
        result = tracker.calibrate()  # the setup menu, left with Esc
        assert not polls["gave_up"], "Esc never reached the calibration display"
        # No validation ran: no errors (None, never NaN) and not accepted.
        assert result is not None and result.avg_error_deg is None and not result.accepted
        assert tracker.graphics.key_log == [(0x1B, 0)]
        tracker.trial_start(trial=1, variables={"level": 1.25})
        tracker.trial_end(result="fixation_break")
        assert tracker.sample() is None  # a dummy link has no samples
    finally:
        edf = tracker.close(dest_dir=tmp_path / "eyetrack")
    assert edf is None  # nothing to transfer over a dummy link
    texts = [text for _, text in tracker.messages]
    assert texts[-4:] == [
        "TRIALID 1",
        "!V TRIAL_VAR level 1.25",
        "!V TRIAL_VAR outcome fixation_break",
        "TRIAL_RESULT 1",  # REPEAT_TRIAL: the trial is re-queued
    ]
