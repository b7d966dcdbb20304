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
