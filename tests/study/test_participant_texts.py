"""Every text the participant's display shows is the protocol's ([instructions]), so a lab can
give them in the participant's language: a real simulated session under Xvfb, stopped and
resumed, draws only the protocol's texts."""

from __future__ import annotations

import dataclasses

import pytest

from protocol.run_settings import InstructionSettings
from study.presenter import Presenter
from study.session import run_session
from tests.study.conftest import simulated_session, small_protocol_dict, write_toml
from tests.study.trial_rig import rig_window

pytestmark = pytest.mark.display
SEED = 5


def test_a_session_shows_only_the_protocols_texts(virtual_x, tmp_path, monkeypatch):
    """Every participant text set to a marked translation; fixation breaks on every trial
    (``sim_fixation_break_prob`` 1) stop the run after 3 aborts, and a resume welcomes the
    participant back. The abort screens, the welcome-back line and the example's wait were
    English strings in the code."""
    print("seed", SEED)
    texts = {
        name: f"DE {name}" + "".join(f" {{{f}}}" for f in fields)
        for name, fields in {
            **{n: () for n in InstructionSettings.model_fields},
            "break_text": ("done", "total", "block", "blocks"),
            "goodbye": ("duration",),
            "practice_intro": ("trials",),
            "practice_again": ("correct", "trials"),
            "practice_done": ("correct", "trials"),
        }.items()
    }
    data = small_protocol_dict(method="staircase", trials=6, break_prob=1.0, blinks=False)
    data["instructions"] = texts
    data["procedure"]["max_aborts_in_a_row"] = 3
    data["practice"] = {"trials": 2, "example": True}
    drawn: list[str] = []
    draw_text = Presenter.draw_text

    def recording(self, text, **kw):
        drawn.append(text)
        draw_text(self, text, **kw)

    monkeypatch.setattr(Presenter, "draw_text", recording)
    config = simulated_session(write_toml(data, tmp_path / "p.toml"), tmp_path / "data", seed=SEED)
    first = run_session(config)
    resumed = run_session(dataclasses.replace(config, resume=True))
    assert first.status.startswith("stopped: 3 trials in a row were aborted")
    assert resumed.status.startswith("stopped: 3 trials in a row were aborted")
    shown = set(drawn)
    print(sorted(shown))
    assert all(t.startswith("DE ") for t in shown), shown - {t for t in shown if t[:3] == "DE "}
    assert {"DE fixation_break", "DE welcome_back\n\nDE welcome"} <= shown


LONG_WELCOME = "\n\n".join(
    [
        "Willkommen zu diesem Experiment zur Wahrnehmung von Bildern im peripheren Gesichtsfeld.",
        "Sie sehen in jedem Durchgang zwei Bilder nacheinander. Eines der beiden Bilder "
        "unterscheidet sich leicht vom anderen.",
        "Bitte halten Sie Ihren Blick während des gesamten Durchgangs auf die Fixationsmarke in "
        "der Mitte gerichtet, auch wenn die Bilder erscheinen.",
        "Drücken Sie nach dem zweiten Bild die Taste 1 (oder LINKS), wenn das ERSTE Bild anders "
        "war, und die Taste 2 (oder RECHTS), wenn das ZWEITE Bild anders war.",
        "Wenn Sie unsicher sind, raten Sie bitte.",
        "Drücken Sie die LEERTASTE, um zu beginnen.",
    ]
)


def test_a_long_text_in_another_language_fits_a_screen_with_many_px_per_degree(virtual_x, tmp_path):
    """A German welcome of six paragraphs on 1920 x 1080 px at 2 m (126 px/deg, the text 58 px
    high): its first line and 'Drücken Sie die LEERTASTE, um zu beginnen.' were off the screen.
    A text taller than the window is set smaller, so every paragraph is on it; the default
    welcome keeps the session's text size."""
    import numpy as np
    from PIL import Image

    from protocol import load_protocol
    from study.presenter import SimClock

    data = small_protocol_dict()
    data["display"].update(
        width_px=1920, height_px=1080, width_cm=53.0, height_cm=30.0, distance_cm=200.0
    )
    p = load_protocol(write_toml(data, tmp_path / "far.toml")).protocol
    win = rig_window(p, size=(1920, 1080))
    shots = {}
    try:
        presenter = Presenter(
            protocol=p, win=win, clock=SimClock(), tracker=None, physio=None, simulated=True
        )
        presenter.screenshot_dir = tmp_path
        for phase, text in (("instructions", LONG_WELCOME), ("welcome", p.instructions.welcome)):
            presenter.draw_text(text)
            presenter.flip(phase=phase)
            shots[phase] = (text, presenter._text.height)
        full_height = presenter.text_height_px
    finally:
        win.close()
    for phase, (text, height) in shots.items():
        shot = np.asarray(Image.open(tmp_path / f"{phase}.png").convert("RGB")).astype(int)
        rows = np.flatnonzero((shot.sum(axis=2) < 150).any(axis=1))
        assert rows.min() > 4 and rows.max() < shot.shape[0] - 4, (phase, rows.min(), rows.max())
        blocks = 1 + np.count_nonzero(np.diff(rows) > 0.5 * height)
        assert blocks == text.count("\n\n") + 1, phase  # every paragraph on the screen
    assert shots["welcome"][1] == full_height  # the default welcome: the session's size
    assert shots["instructions"][1] < full_height
