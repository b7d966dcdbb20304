"""The example pair after the instructions, as the participant sees it on the default display
(2560 x 1440 px, a real PsychoPy window): its caption reads like every other text of the
session, and the place where the eyes rest carries the fixation mark of the trials."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from protocol import load_protocol
from tests.study.conftest import small_protocol_dict, write_toml

IMAGE_PX = 1024
FOVEATED_RGB, TWIN_RGB = (200, 120, 40), (40, 120, 200)


@pytest.fixture(scope="module")
def shown(virtual_x, tmp_path_factory):
    """The example screen of a protocol with the default texts, drawn by ``SessionScreens`` on a
    window of the display's full size; returns (screenshot as an int array, presenter)."""
    from psychopy import visual

    from study.presenter import Presenter, SimClock
    from study.procedures import SessionPlan
    from study.session_display import background_rgb
    from study.session_screens import SessionScreens

    root = tmp_path_factory.mktemp("example_screen")
    p = load_protocol(write_toml(small_protocol_dict(), root / "p.toml")).protocol
    size = (p.display.width_px, p.display.height_px)
    win = visual.Window(
        size=size,
        units="pix",
        color=background_rgb(p),
        colorSpace="rgb",
        waitBlanking=False,
        checkTiming=False,
    )
    try:
        presenter = Presenter(
            protocol=p, win=win, clock=SimClock(), tracker=None, physio=None, simulated=True
        )
        presenter.screenshot_dir = root
        screens = SessionScreens(
            protocol=p,
            plan=SessionPlan(protocol=p, seed=1, participant="01"),
            presenter=presenter,
            sidecar={},
            run_record={},
            write_sidecar=lambda: None,
            say=lambda *a: None,
        )
        foveated = np.full((IMAGE_PX, IMAGE_PX, 3), FOVEATED_RGB, dtype=np.uint8)
        twin = np.full((IMAGE_PX, IMAGE_PX, 3), TWIN_RGB, dtype=np.uint8)
        gaze_px = (IMAGE_PX / 2, IMAGE_PX / 2)
        screens._show_pair(foveated, twin, gaze_px=gaze_px, caption=p.instructions.example_text)
        shot = np.asarray(Image.open(root / "example.png").convert("RGB")).astype(int)
        yield shot, presenter
    finally:
        win.close()


def _matches(shot: np.ndarray, rgb) -> np.ndarray:
    return np.abs(shot - np.array(rgb)).sum(axis=2) < 12


def test_the_caption_has_the_line_length_of_every_other_text(shown):
    """The caption spanned 0.9 of the window (2,250 px, 50 deg: a line the eyes cannot take in
    without a head movement) in a size of its own; it wraps like the instructions (25 deg)."""
    shot, presenter = shown
    images = _matches(shot, FOVEATED_RGB) | _matches(shot, TWIN_RGB)
    bottom = np.nonzero(images.any(axis=1))[0].max()
    ink = shot[bottom + 1 :].sum(axis=2) < 150  # black text below the images
    rows, cols = np.nonzero(ink)
    assert rows.size, "no caption below the images"
    width_px = cols.max() - cols.min() + 1
    assert width_px <= presenter.text_wrap_px + 2, (width_px, presenter.text_wrap_px)
    assert rows.max() + bottom + 1 < shot.shape[0] - 4  # not cut off at the screen's edge


def test_the_eyes_rest_on_the_fixation_mark_of_the_trials(shown):
    """Around the place where the eyes rest the example drew only a ring; the participant, told
    to keep their eyes on the fixation mark, sees that mark there (the trials' bull's-eye with
    its cross in the background grey), inside the ring."""
    shot, presenter = shown
    black = shot.sum(axis=2) < 60
    on_left = _matches(shot, FOVEATED_RGB)
    cols = np.nonzero(on_left.any(axis=0))[0]
    rows = np.nonzero(on_left.any(axis=1))[0]
    inside = np.zeros_like(black)
    inside[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
    ys, xs = np.nonzero(black & inside)  # the ring and the mark, both centred on the gaze
    cy, cx = int(round(ys.mean())), int(round(xs.mean()))
    r = presenter.protocol.fixation.mark_size_deg * presenter.display.pixels_per_degree / 2
    grey = np.array(shot[0, 0])
    assert black[cy, cx], "no inner dot where the eyes rest"
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):  # the cross arms: background grey
        y, x = cy + round(0.65 * r * dy), cx + round(0.65 * r * dx)
        assert np.abs(shot[y, x] - grey).sum() < 12, (dy, dx, shot[y, x])
    for dy, dx in ((1, 1), (1, -1), (-1, 1), (-1, -1)):  # the disc between the arms: black
        y, x = cy + round(0.45 * r * dy), cx + round(0.45 * r * dx)
        assert black[y, x], (dy, dx, shot[y, x])


def test_the_example_names_the_difference_with_the_words_of_the_question():
    """The welcome says one image is "different" and every trial asks "Which image was
    different?", but the example called the foveated image "the altered one": a participant
    could take "altered" for another kind of change than the one asked about."""
    from protocol.run_settings import InstructionSettings

    texts = InstructionSettings()
    assert "different" in texts.response_prompt and "different" in texts.welcome
    assert "LEFT image is the different one" in texts.example_text
    for name, text in texts.model_dump().items():
        assert "altered" not in text.lower(), name
