"""Gaze sources behind one interface: an SR Research EyeLink, EyeLink dummy mode, a simulated eye.

``make_tracker`` builds one; the study runner then calls ``open``, ``calibrate``, per trial
``trial_start`` / ``set_target`` / ``sample`` / ``message`` / ``trial_end``, and ``close``. See
``study.trackers.base.Tracker`` for the contract and units (degrees from the screen centre, x right,
y up; seconds on the given clock).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from generator.errors import FoveaError
from study.trackers.base import (
    CalibrationResult,
    DriftCheckResult,
    GazeSample,
    Tracker,
    TrackerKind,
    TrackerLinkLost,
)
from study.trackers.edf import validate_edf_name

if TYPE_CHECKING:
    from generator.geometry import DisplayGeometry

__all__ = [
    "CalibrationResult",
    "DriftCheckResult",
    "GazeSample",
    "Tracker",
    "TrackerKind",
    "TrackerLinkLost",
    "make_tracker",
    "validate_edf_name",
]

TRACKER_KINDS = ("eyelink", "dummy", "sim", "eyelink-emulated")


def make_tracker(
    kind: TrackerKind,
    *,
    settings,
    seed: int,
    clock,
    display: DisplayGeometry | None = None,
    break_timing: dict | None = None,
    **options,
) -> Tracker:
    """Build a tracker (not yet opened).

    Args:
        kind: ``"eyelink"`` (a tracker at ``settings.host_ip``), ``"dummy"`` (pylink dummy mode,
            the mouse as gaze), ``"sim"`` (a scripted simulated participant) or
            ``"eyelink-emulated"`` (the EyeLink code against the pylink emulator, the simulated
            participant as the eye).
        settings: the protocol's ``protocol.TrackerSettings``.
        seed: seeds the simulated participant (ignored by the others).
        clock: callable returning seconds; sample and message times are on this clock.
        display: the display geometry for pixel <-> degree conversion (EyeLink and dummy); None
            derives it from the PsychoPy window's monitor at ``open``.
        break_timing: the simulated participant's fixation-break timing for the session's
            flips (``study.trackers.sim.break_timing``; ``sim`` and ``eyelink-emulated``).
        **options: passed to the EyeLink trackers (``refresh_hz``, ``limits``, attempts; for
            ``eyelink-emulated`` also ``faults`` and ``host_dir``).

    Raises:
        FoveaError: for an unknown kind.
    """
    if kind == "sim":
        from study.trackers.sim import SimulatedTracker

        return SimulatedTracker(settings=settings, seed=seed, clock=clock, **(break_timing or {}))
    if kind == "eyelink":
        from study.trackers.eyelink import EyeLinkTracker

        return EyeLinkTracker(settings=settings, clock=clock, display=display, **options)
    if kind == "dummy":
        from study.trackers.eyelink import DummyEyeLinkTracker

        return DummyEyeLinkTracker(settings=settings, clock=clock, display=display, **options)
    if kind == "eyelink-emulated":
        from study.trackers.emulated import EmulatedEyeLinkTracker

        return EmulatedEyeLinkTracker(
            settings=settings,
            seed=seed,
            clock=clock,
            display=display,
            break_timing=break_timing,
            **options,
        )
    raise FoveaError(f"tracker kind {kind!r} is not one of {', '.join(TRACKER_KINDS)}")
