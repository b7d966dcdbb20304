"""Foveated requests a trial gives up on, through the real window, the trial runner and the
process service with the tiny generator (scripted gaze): a late request is cancelled unless it
may stand in later (``on_deadline_miss = "cached"``, none kept yet), every abort path cancels
the speculation, a stand-in is shown only when made within ``cache_gaze_tolerance_deg`` of the
measured gaze, only ``cached`` mode keeps stand-ins (and forgets an answered plan's), and the
give-up message names the image that hung.

Where a request must not finish (a deadline that must be missed, a speculation that must still
run at the abort), the generator process is stopped (SIGSTOP) for the trial, so nothing depends
on how fast this machine generates."""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager

import pytest

from study.generation import GenerationTicket
from study.service.errors import GenerationCancelled, ServiceUnavailable
from tests.study.trial_rig import make_runner, plan, rig_protocol

pytestmark = pytest.mark.display
FX = 3.0  # the rig protocol's fixation target, (3, 0) deg
SEED = 1000  # trial_rig.plan's seed
LATE = {"deadline_s": 1e-4, "speculative": False}  # every request misses its deadline


@pytest.fixture(scope="module")
def service(virtual_x):
    from protocol.geometry import stimulus_geometry
    from study.service.start import start_service

    protocol = rig_protocol(generation={"service": "process"})
    service = start_service(
        protocol, geometry=stimulus_geometry(protocol), scenes=None, log=lambda *a: None
    )
    yield service
    service.close()


class Recording:
    """The service, recording the foveated tickets it hands out; ``hang``: requests of that
    kind get a ticket that never finishes (a request the generator never delivers)."""

    def __init__(self, service, hang: str | None = None) -> None:
        self._service, self._hang = service, hang
        self.foveated: list = []
        self.speculative: list = []

    def submit(self, request):
        if request.kind == self._hang:
            ticket = GenerationTicket(request)
        else:
            ticket = self._service.submit(request)
        if request.kind == "foveated":
            self.foveated.append(ticket)
        return ticket

    def submit_speculative(self, request):
        ticket = self._service.submit_speculative(request)
        self.speculative.append(ticket)
        return ticket

    def __getattr__(self, name):
        return getattr(self._service, name)


@contextmanager
def frozen(service):
    """The generator process stopped: no request finishes meanwhile (well within the heartbeat
    timeout, so the service does not take it for a hang)."""
    pid = service.child_pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _runner(window, service, *, gaze_x: float = FX, hang: str | None = None, **generation):
    protocol = rig_protocol(generation=generation)
    recording = Recording(service, hang=hang)
    runner, gaze = make_runner(
        protocol, service=recording, win=window, requeue_dropped_frames=False
    )
    where = {"x": gaze_x}
    gaze.script = lambda t, shown: (where["x"], 0.0)
    return protocol, runner, gaze, recording, where


def _twin_cached(service) -> None:
    deadline = time.perf_counter() + 120
    while service.cached_twin(seed=SEED, conditioning=0) is None:
        assert time.perf_counter() < deadline, "the twin was never cached"
        time.sleep(0.02)


def _messages(gaze) -> list[str]:
    """The tracker messages sent from now on (the EDF's)."""
    sent: list[str] = []
    send = gaze.message

    def message(text):
        sent.append(text)
        return send(text)

    gaze.message = message
    return sent


def _interest_area_nearest_x_deg(sent: list[str], presenter, candidates_deg) -> float:
    """Of ``candidates_deg`` (x, on the horizontal meridian), the one nearest the centre of the
    trial's ``!V IAREA ELLIPSE`` (window pixels, origin top-left)."""
    (area,) = [m for m in sent if m.startswith("!V IAREA ELLIPSE")]
    left, _, right, _ = (int(v) for v in area.split()[4:8])
    centre_px = (left + right) / 2 - presenter.win.size[0] / 2
    return min(candidates_deg, key=lambda x: abs(presenter.deg_to_pix(x, 0.0)[0] - centre_px))


def _cancelled(ticket) -> bool:
    if not (ticket.cancelled and ticket.done()):
        return False
    with pytest.raises(GenerationCancelled):
        ticket.result()
    return True


def test_a_late_request_is_cancelled_when_the_trial_is_requeued(window, service):
    protocol, runner, _, recording, _ = _runner(window, service, **LATE)
    with frozen(service):
        outcome = runner.run(plan=plan(protocol), trial=1)
    assert outcome.requeue and outcome.row["abort_reason"] == "deadline"
    (ticket,) = recording.foveated
    assert _cancelled(ticket)  # the next trial's request does not wait behind it
    assert not runner.sources.is_kept(ticket) and len(runner.sources.fallbacks) == 0


def test_cached_mode_keeps_a_late_request_and_shows_it_only_near_the_measured_gaze(window, service):
    protocol, runner, gaze, recording, where = _runner(
        window, service, on_deadline_miss="cached", max_deadline_misses=10, **LATE
    )
    # 1: nothing kept yet: the late request (made at the target) goes on, to stand in later.
    with frozen(service):
        first = runner.run(plan=plan(protocol, attempt=1), trial=1)
    assert first.row["abort_reason"] == "deadline"
    late = recording.foveated[-1]
    assert not late.cancelled and runner.sources.is_kept(late)
    assert late.wait(120) and late.result() is not None
    _twin_cached(service)
    # 2: gaze measured 0.9 deg from where the kept image was made (cache_gaze_tolerance_deg
    # 0.5): no stand-in; re-queued, and this request (0.9 deg from the target: it could never
    # stand in) is cancelled.
    where["x"] = FX + 0.9
    with frozen(service):
        second = runner.run(plan=plan(protocol, attempt=2), trial=2)
    assert second.requeue and second.row["abort_reason"] == "deadline"
    assert second.row["cached_stimulus"] == 0
    assert _cancelled(recording.foveated[-1])
    # 3: 0.3 deg from it: the stand-in is shown; this late request is cancelled (one is kept).
    where["x"] = FX + 0.3
    sent = _messages(gaze)
    with frozen(service):
        third = runner.run(plan=plan(protocol, attempt=3), trial=3)
    assert not third.requeue and third.row["cached_stimulus"] == 1
    # beh.tsv says where the stand-in was made (the first trial's gaze, at the target), so the
    # analyst sees the shown fovea 0.3 deg from the measured gaze.
    assert third.row["gaze_x_deg"] == pytest.approx(FX + 0.3, abs=0.05)
    made = (third.row["stand_in_gaze_x_deg"], third.row["stand_in_gaze_y_deg"])
    assert made == (pytest.approx(FX, abs=0.05), pytest.approx(0.0, abs=0.05))
    assert second.row["stand_in_gaze_x_deg"] is None  # no stand-in shown: n/a
    # Data Viewer's foveal interest area is where the shown image's fovea is, not the gaze.
    shown_at = _interest_area_nearest_x_deg(sent, runner.presenter, (FX, FX + 0.3))
    assert shown_at == FX
    assert third.row["deadline_missed"] == 1 and third.row["response"] in (1, 2)
    assert _cancelled(recording.foveated[-1])
    # answered: the plan's stand-in is forgotten
    assert len(runner.sources.fallbacks) == 0 and not runner.sources._late


def test_a_stopped_recording_cancels_the_running_speculation(window, service):
    protocol, runner, gaze, recording, _ = _runner(window, service, speculative=True)

    def stop_in_fixation(t, shown):
        if shown == "fixation":
            gaze.inner.stop_recording()
        return (FX, 0.0)

    gaze.script = stop_in_fixation
    with frozen(service):
        outcome = runner.run(plan=plan(protocol), trial=1)
    assert outcome.recording_stopped and outcome.row["abort_reason"] == "recording_stopped"
    (speculation,) = recording.speculative
    assert _cancelled(speculation)


@pytest.mark.parametrize("mode", ["requeue", "cached"])
def test_only_cached_mode_remembers_shown_images(window, service, mode):
    """A fixation break in interval 1, after both images were ready: ``cached`` mode keeps the
    foveated image (made at the measured gaze) for the re-presentation, ``requeue`` none."""
    protocol, runner, _, recording, _ = _runner(
        window, service, on_deadline_miss=mode, speculative=False
    )
    runner.presenter.tracker.script = lambda t, shown: (
        (FX + 5.0, 0.0) if shown == "interval1" else (FX, 0.0)
    )
    outcome = runner.run(plan=plan(protocol), trial=1)
    assert outcome.requeue and outcome.row["abort_reason"] == "fixation_break"
    kept = runner.sources.fallbacks
    if mode == "requeue":
        assert len(kept) == 0 and not runner.sources._late
    else:
        assert len(kept) == 1
        made_px, result = next(iter(kept._data.values()))
        assert made_px == recording.foveated[-1].request.gaze_px
        assert result is recording.foveated[-1].result()


@pytest.mark.parametrize(("hang", "named"), [(None, "foveated image"), ("full", "reference")])
def test_the_give_up_names_the_image_that_hung(window, service, monkeypatch, hang, named):
    """Shown late (max_deadline_misses = 1) and never delivered: the session stops naming the
    image that did not come: the foveated one (the generator process stopped) or the
    reference (its ticket never finishes; the foveated image is made)."""
    import study.trial.fixation as fixation

    monkeypatch.setattr(fixation, "GIVE_UP_MIN_S", 1.0)
    protocol, runner, _, recording, _ = _runner(
        window,
        service,
        hang=hang,
        deadline_s=0.01,
        max_deadline_misses=1,
        speculative=False,
    )
    stopped = frozen(service) if hang is None else None
    with pytest.raises(ServiceUnavailable, match=f"trial's {named} .*not ready"):
        if stopped is not None:
            with stopped:
                runner.run(plan=plan(protocol), trial=1)
        else:
            runner.run(plan=plan(protocol), trial=1)
    if hang is None:
        assert _cancelled(recording.foveated[-1])
