"""The screen after a trial without an answer within ``response_window_s``: a trial of the real
runner in the real window, keyboard answers, no key pressed."""

from __future__ import annotations

import pytest

from study.presenter import RESPONSE_KEYS
from tests.study.trial_rig import make_runner, plan, rig_protocol


@pytest.fixture(scope="module")
def service(virtual_x):
    from protocol.geometry import stimulus_geometry
    from study.service.start import start_service

    protocol = rig_protocol()
    service = start_service(
        protocol, geometry=stimulus_geometry(protocol), scenes=None, log=lambda *a: None
    )
    yield service
    service.close()


def test_the_late_answer_screen_says_it_was_late_and_names_every_answer_key(window, service):
    """It said "Please answer with 1 or 2." to a participant who may have been answering with
    the arrow keys (LEFT and RIGHT are accepted, and the welcome names them) and was not told
    that the answer came too late."""
    protocol = rig_protocol(timing={"response_window_s": 0.5})
    runner, _ = make_runner(protocol, service=service, win=window, requeue_dropped_frames=False)
    runner.observer = None  # the keyboard; nobody presses a key
    presenter, shown = runner.presenter, []
    draw_text = presenter.draw_text

    def spy(text, **kwargs):
        shown.append(text)
        draw_text(text, **kwargs)

    presenter.draw_text = spy
    outcome = runner.run(plan=plan(protocol), trial=1)
    assert outcome.row["abort_reason"] == "no_response" and outcome.requeue
    text = shown[-1]
    assert "time" in text.lower()
    for key in RESPONSE_KEYS:
        if not key.startswith("num_"):
            assert key.upper() in text, key


@pytest.mark.parametrize(("window_s", "late"), [(0.05, True), (30.0, False)])
def test_a_simulated_answer_after_the_response_window_is_no_answer(window, service, window_s, late):
    """fovea simulate with response_window_s 0.7 logged answers up to 1.44 s after the prompt
    (the simulated response times have a median of 0.7 s) as responses: no trial was re-queued
    for no_response, unlike the lab's sessions with the same protocol. A simulated answer after
    the window is now no answer, re-queued as a key after it is."""
    protocol = rig_protocol(timing={"response_window_s": window_s})
    runner, _ = make_runner(protocol, service=service, win=window, requeue_dropped_frames=False)
    assert runner.observer is not None
    outcome = runner.run(plan=plan(protocol), trial=1)
    if late:
        assert outcome.row["abort_reason"] == "no_response" and outcome.requeue
        assert outcome.row.get("response") is None, outcome.row.get("response")
    else:
        assert outcome.row["response"] in (1, 2) and not outcome.requeue
