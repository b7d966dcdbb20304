"""Gaze sources behind one interface: an SR Research EyeLink, EyeLink dummy mode, a simulated eye."""

from __future__ import annotations

from study.trackers.base import CalibrationResult, GazeSample, Tracker, TrackerKind

__all__ = ["CalibrationResult", "GazeSample", "Tracker", "TrackerKind", "make_tracker"]


def make_tracker(kind: TrackerKind, *, settings, seed: int, clock) -> Tracker:
    """Build a tracker (not yet opened)."""
    raise NotImplementedError("being written by the tracker helper")
