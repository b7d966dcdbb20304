"""A trial rig for tests: the real PsychoPy window (suite's Xvfb), the tiny generator on a
thread, the simulated tracker on a simulated clock, a ``TrialRunner`` with the parametric
observer; tests script the gaze (``Rig.script``) or slow a phase down (``Rig.slow``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from protocol import validate_protocol
from protocol.geometry import stimulus_geometry
from study.procedures import TrialPlan
from tests.study.conftest import small_protocol_dict


def rig_protocol(**changes):
    """The small test protocol with ``changes`` ({table: {key: value}}; ``condition``: its one
    condition) applied."""
    data = small_protocol_dict()
    for table, values in changes.items():
        (data["conditions"][0] if table == "condition" else data[table]).update(values)
    return validate_protocol(data, source="test")


@dataclass
class ScriptedGaze:
    """A gaze source: ``script(t, phase) -> (x_deg, y_deg) | None`` (None: a blink) or, when it
    returns ``...``, the simulated participant's own gaze."""

    inner: object
    presenter: object = None
    script: object = None
    slow_phase: str | None = None
    slow_s: float = 0.0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def sample(self):
        from study.trackers.base import GazeSample

        shown = getattr(self.presenter, "_shown_phase", None)
        if self.slow_phase is not None and shown == self.slow_phase:
            self.slow_phase = None  # once
            time.sleep(self.slow_s)
        real = self.inner.sample()
        if self.script is None:
            return real
        t = self.presenter.clock()
        where = self.script(t, shown)
        if where is ...:
            return real
        if where is None:
            return GazeSample(time_s=t, x_deg=float("nan"), y_deg=float("nan"), valid=False)
        return GazeSample(time_s=t, x_deg=where[0], y_deg=where[1], valid=True)


def rig_window(protocol, *, size):
    """A real PsychoPy window of ``size`` px on the protocol's background, in ``pix`` units,
    without timing checks (the screen tests look at frames, not their timing)."""
    from psychopy import visual

    from study.session_display import background_rgb

    return visual.Window(
        size=size,
        units="pix",
        color=background_rgb(protocol),
        colorSpace="rgb",
        checkTiming=False,
        waitBlanking=False,
    )


def make_runner(
    protocol, *, service, win, seed: int = 5, real_clock: bool = False, **runner_options
):
    """(runner, gaze) for ``protocol`` in ``win``; ``gaze`` is the ``ScriptedGaze``.
    ``real_clock``: the session clock of ``fovea run`` (``RealClock``, not simulated)."""
    from study.observers import make_observer
    from study.presenter import Presenter, RealClock, SimClock
    from study.trackers import make_tracker
    from study.trial import TrialRunner

    clock = RealClock() if real_clock else SimClock()
    inner = make_tracker("sim", settings=protocol.tracker, seed=seed, clock=clock)
    inner.open(win=win, session_dir=None, edf_name="rig")
    inner.start_recording()
    gaze = ScriptedGaze(inner=inner)
    presenter = Presenter(
        protocol=protocol,
        win=win,
        clock=clock,
        tracker=gaze,
        physio=None,
        simulated=not real_clock,
        speed=protocol.simulation.speed,
        auto_advance=True,
    )
    gaze.presenter = presenter
    runner = TrialRunner(
        protocol=protocol,
        presenter=presenter,
        tracker=gaze,
        service=service,
        geometry=stimulus_geometry(protocol),
        observer=make_observer(
            "parametric", display=protocol.display, settings=protocol.simulation
        ),
        session_seed=seed,
        participant="rig",
        session="1",
        **runner_options,
    )
    return runner, gaze


def plan(protocol, *, interval_foveated: int = 1, attempt: int = 1, level: float = 2.0):
    condition = protocol.conditions[0]
    return TrialPlan(
        plan_id=1,
        track=condition.name,
        condition=condition.name,
        level=level,
        seed=1000,
        conditioning=0,
        interval_foveated=interval_foveated,
        attempt=attempt,
    )


def press_keys(display: str, win, keys: list[str], *, delay_s: float = 0.0) -> None:
    """Type ``keys`` into the X display through XTest (``delay_s`` before each)."""
    from Xlib import XK, X
    from Xlib import display as xdisplay
    from Xlib.ext import xtest

    connection = xdisplay.Display(display)
    left, top = win.winHandle.get_location()
    xtest.fake_input(connection, X.MotionNotify, x=left + 50, y=top + 50)
    for key in keys:
        time.sleep(delay_s)
        code = connection.keysym_to_keycode(XK.string_to_keysym(key))
        xtest.fake_input(connection, X.KeyPress, code)
        xtest.fake_input(connection, X.KeyRelease, code)
        connection.sync()
    connection.close()
