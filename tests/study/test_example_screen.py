"""The example pair after the instructions, as the participant sees it on the default display
(2560 x 1440 px, a real PsychoPy window): its caption reads like every other text of the
session, and the place where the eyes rest carries the fixation mark of the trials."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from protocol import load_protocol
from tests.study.conftest import small_protocol_dict, write_toml
from tests.study.trial_rig import rig_window

IMAGE_PX = 1024
FOVEATED_RGB, TWIN_RGB = (200, 120, 40), (40, 120, 200)


def _show_example(root, *, display: dict | None = None, image_px: int = IMAGE_PX):
    """The example screen of a protocol with the default texts (``display``: its [display]
    keys changed), drawn by ``SessionScreens`` on a window of the display's full size; returns
    (screenshot as an int array, presenter)."""

    from study.presenter import Presenter, SimClock
    from study.procedures import SessionPlan
    from study.session_screens import SessionScreens

    data = small_protocol_dict()
    data["display"].update(display or {})
    p = load_protocol(write_toml(data, root / "p.toml")).protocol
    size = (p.display.width_px, p.display.height_px)
    win = rig_window(p, size=size)
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
        foveated = np.full((image_px, image_px, 3), FOVEATED_RGB, dtype=np.uint8)
        twin = np.full((image_px, image_px, 3), TWIN_RGB, dtype=np.uint8)
        gaze_px = (image_px / 2, image_px / 2)
        screens._show_pair(foveated, twin, gaze_px=gaze_px, caption=p.instructions.example_text)
        shot = np.asarray(Image.open(root / "example.png").convert("RGB")).astype(int)
    finally:
        win.close()
    return shot, presenter


@pytest.fixture(scope="module")
def shown(virtual_x, tmp_path_factory):
    """The example screen on the default display (2560 x 1440 px)."""
    return _show_example(tmp_path_factory.mktemp("example_screen"))


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


_LAPTOP = dict(width_px=1366, height_px=768, width_cm=30.9, height_cm=17.4, distance_cm=50.0)
_FAR = dict(width_px=1920, height_px=1080, width_cm=53.0, height_cm=30.0, distance_cm=200.0)


@pytest.mark.parametrize(
    ("display", "image_px", "shown_px"),
    [
        # a 15.6-inch laptop at 50 cm (38.6 px/deg): the last line was cut off at the bottom
        (_LAPTOP, 512, 512),
        # 24 inches at 2 m (126 px/deg, the text 58 px high): two lines were off the screen
        (_FAR, 512, 512),
        # ... and a 1024 px image: the images give way to the caption (0.51, not 0.74)
        (_FAR, 1024, None),
    ],
    ids=["laptop_1366x768", "far_1920x1080", "far_1920x1080_large_image"],
)
def test_the_whole_caption_is_on_a_small_or_distant_screen(
    virtual_x, tmp_path, display, image_px, shown_px
):
    """The caption hung from a fixed place below the images, whatever its height: on a
    1366 x 768 laptop "Press SPACE to continue." was cut off at the screen's bottom edge, at
    126 px/deg it and the line above were off the screen. The pair and the caption are centred
    together; 512 px images still fit 1:1 on both, larger ones are shrunk to leave the caption
    its room."""
    shot, presenter = _show_example(tmp_path, display=display, image_px=image_px)
    images = _matches(shot, FOVEATED_RGB) | _matches(shot, TWIN_RGB)
    image_rows = np.nonzero(images.any(axis=1))[0]
    assert image_rows.min() > 4, "the images reach the top edge"
    if shown_px is not None:
        assert image_rows.max() - image_rows.min() + 1 == shown_px  # not scaled
    bottom = image_rows.max()
    ink = shot[bottom + 1 :].sum(axis=2) < 150
    rows = np.nonzero(ink.any(axis=1))[0]
    assert rows.size, "no caption below the images"
    assert rows.max() + bottom + 1 < shot.shape[0] - 4, "the caption reaches the bottom edge"
    blocks = 1 + np.count_nonzero(np.diff(rows) > 0.5 * presenter.text_height_px)
    paragraphs = presenter.protocol.instructions.example_text.count("\n\n") + 1
    assert blocks == paragraphs  # each paragraph on the screen: none is missing
