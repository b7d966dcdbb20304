"""The screens after interval 2, in a real PsychoPy window: the response prompt never covers
the fixation mark, and the feedback marks for correct and wrong differ in luminance as well as
hue (one lighter, one darker than the background), so a participant with red-green colour
blindness tells them apart."""

from __future__ import annotations

import numpy as np
import pytest

from study.trial.presentation import PROMPT_OFFSET_DEG, prompt_y_deg
from tests.study.trial_rig import make_runner, plan, rig_protocol, rig_window

pytestmark = pytest.mark.display


def _luminance(rgb) -> float:
    """Relative luminance (sRGB, Rec. 709 weights) of an 8-bit colour."""
    c = np.asarray(rgb, dtype=float) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(linear @ (0.2126, 0.7152, 0.0722))


def test_correct_and_wrong_feedback_differ_in_luminance(virtual_x, tmp_path):

    protocol = rig_protocol(feedback={"enabled": True})
    win = rig_window(protocol, size=(400, 300))
    try:
        runner, _ = make_runner(protocol, service=None, win=win)
        state = runner._new_trial(plan(protocol), trial=1)
        x, y = runner.presenter.deg_to_pix(*state.fixation_deg)
        runner.presenter.screenshot_dir = tmp_path  # each phase's first frame, as drawn
        shown = {}
        for correct in (True, False):
            runner.presenter.screenshots.clear()
            runner._feedback(state, correct=correct)
            frame = np.asarray(runner.presenter.screenshots["feedback"].convert("RGB")).astype(int)
            # The disc's four quadrants between its cross arms (window y is up).
            row, col = round(150 - y), round(200 + x)
            quadrants = [frame[row + dy, col + dx] for dy in (-4, 4) for dx in (-4, 4)]
            shown[correct] = np.mean(quadrants, axis=0)
        background = frame[5, 5]
    finally:
        win.close()
    lum = {k: _luminance(v) for k, v in shown.items()}
    lum_bg = _luminance(background)
    print("mark rgb", shown, "luminance", lum, "background", lum_bg)
    assert lum[True] > 1.5 * lum_bg and lum[False] < lum_bg / 1.5


def test_the_prompt_moves_below_the_centre_when_the_mark_is_where_it_would_be():
    assert prompt_y_deg(0.0) == PROMPT_OFFSET_DEG and prompt_y_deg(-8.0) == PROMPT_OFFSET_DEG
    assert prompt_y_deg(PROMPT_OFFSET_DEG) == -PROMPT_OFFSET_DEG
    assert prompt_y_deg(PROMPT_OFFSET_DEG + 1.0) == -PROMPT_OFFSET_DEG


def test_a_trial_fixating_where_the_prompt_was_keeps_its_mark_visible(virtual_x, tmp_path):
    """A condition fixating 3 deg above the centre: the prompt (3 deg above the centre) was
    drawn over its fixation mark during the answer; it is now below the centre."""

    from protocol.geometry import stimulus_geometry
    from study.service.start import start_service

    protocol = rig_protocol(condition={"fixation_deg": [0.0, PROMPT_OFFSET_DEG]})
    service = start_service(
        protocol, geometry=stimulus_geometry(protocol), scenes=None, log=lambda *a: None
    )
    win = rig_window(protocol, size=(800, 600))
    try:
        runner, _ = make_runner(protocol, service=service, win=win, requeue_dropped_frames=False)
        runner.presenter.screenshot_dir = tmp_path
        outcome = runner.run(plan=plan(protocol), trial=1)
        _, mark_y = runner.presenter.deg_to_pix(0.0, PROMPT_OFFSET_DEG)
    finally:
        win.close()
        service.close()
    assert not outcome.requeue
    frame = np.asarray(runner.presenter.screenshots["response"].convert("RGB")).astype(int)
    dark = frame.sum(axis=2) < 150  # the text's ink and the black mark
    rows = np.flatnonzero(dark.any(axis=1))
    mark_row = round(300 - mark_y)
    text_rows = rows[np.abs(rows - mark_row) > 12]
    print("mark row", mark_row, "ink rows", rows.min(), rows.max())
    assert text_rows.size and (text_rows > 300).all()  # the prompt is below the centre


def _contrast(a, b) -> float:
    """Luminance contrast ratio (WCAG: (L1 + 0.05) / (L2 + 0.05), the lighter above)."""
    la, lb = sorted((_luminance(a), _luminance(b)))
    return (lb + 0.05) / (la + 0.05)


@pytest.mark.parametrize("background_gray", [0.1, 0.5])
def test_the_prompt_and_the_mark_stand_out_from_a_dark_background(
    virtual_x, tmp_path, background_gray
):
    """A lab's dark background ([display] background_gray = 0.1): the prompt, every other text
    and the fixation mark were black on it (contrast 1.2:1), so the participant could neither
    read the instructions nor find the mark. They are white on a dark background, black on the
    default mid-grey as before; both at a contrast of at least 4.5:1. So are the EyeLink
    calibration targets."""

    protocol = rig_protocol(display={"background_gray": background_gray})
    win = rig_window(protocol, size=(800, 600))
    try:
        runner, _ = make_runner(protocol, service=None, win=win)
        presenter = runner.presenter
        presenter.screenshot_dir = tmp_path
        presenter.draw_text(protocol.instructions.response_prompt, y_deg=PROMPT_OFFSET_DEG)
        presenter.draw_fixation(0.0, 0.0)
        presenter.flip(phase="response")
        frame = np.asarray(presenter.screenshots["response"].convert("RGB")).astype(int)
        _, text_y = presenter.deg_to_pix(0.0, PROMPT_OFFSET_DEG)
        r = protocol.fixation.mark_size_deg * presenter.display.pixels_per_degree / 2
        from study.trackers.eyelink import import_pylink

        import_pylink()  # the calibration targets on the same background
        from study.graphics.calibration import PsychoPyCalibrationDisplay

        target = PsychoPyCalibrationDisplay(win=win).foreground
    finally:
        win.close()
    assert target == ((1.0,) * 3 if background_gray < 0.3 else (-1.0,) * 3)
    background = frame[5, 5]
    text_row = round(300 - text_y)
    band = frame[text_row - 8 : text_row + 8].reshape(-1, 3)
    ink = band[np.argmax(np.abs(band - background).sum(axis=1))]  # the text's strongest pixel
    disc = frame[round(300 - 0.45 * r), round(400 + 0.45 * r)]  # between the cross's arms
    print("background", background, "text", ink, "mark", disc)
    assert _contrast(ink, background) >= 4.5
    assert _contrast(disc, background) >= 4.5


def test_a_simulated_window_shows_the_prompt_at_many_pixels_per_degree(virtual_x, tmp_path):
    """fovea simulate's window (without --full-window) fitted the image and the fixation marks
    only: at 126 px/deg (1920 x 1080 at 2 m, a 512 px image) it was 576 px tall and the prompt,
    3 deg (380 px) above the centre, lay outside it, so the response screenshot showed the mark
    alone. The window holds the prompt's line."""

    from study.session_display import window_size_px

    protocol = rig_protocol(
        display={"width_cm": 53.0, "height_cm": 30.0, "distance_cm": 200.0}
        | {"width_px": 1920, "height_px": 1080},
        stimulus={"image_width_px": 512, "image_height_px": 512},
        condition={"fixation_deg": [0.0, 0.0]},
    )
    size = window_size_px(protocol)
    win = rig_window(protocol, size=size)
    try:
        runner, _ = make_runner(protocol, service=None, win=win)
        presenter = runner.presenter
        presenter.screenshot_dir = tmp_path
        presenter.draw_text(protocol.instructions.response_prompt, y_deg=prompt_y_deg(0.0))
        presenter.flip(phase="response")
        frame = np.asarray(presenter.screenshots["response"].convert("RGB")).astype(int)
    finally:
        win.close()
    rows = np.flatnonzero((frame.sum(axis=2) < 150).any(axis=1))
    print("window", size, "ink rows", rows[:1], rows[-1:])
    assert rows.size, "no prompt in the window"
    assert rows.min() > 2 and rows.max() < size[1] / 2  # whole, above the centre
