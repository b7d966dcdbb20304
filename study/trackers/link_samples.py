"""EyeLink link samples -> gaze samples in degrees, and which of them are new and fresh.

pylink's ``getNewestSample()`` returns the newest sample the link has delivered, and the same
sample again when nothing newer has arrived (recording stopped, link stalled). ``SampleGate``
tells the runner so: a sample whose tracker timestamp has not advanced is not new, and one older
than two display frames is no gaze at all (invalid), so fixation control and gaze-contingent
generation never run on a frozen eye.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import replace

from study.trackers.base import GazeSample
from study.trackers.screen import WindowMapper

# pylink.MISSING_DATA: the gaze value the tracker sends while the eye is lost (blink, track loss).
MISSING_DATA = -32768.0


def import_pylink():
    """Import pylink without its import-time banner on stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        import pylink
    return pylink


def gaze_from_link_sample(raw, *, eye: str, mapper: WindowMapper, time_s: float) -> GazeSample:
    """Convert a ``pylink.Sample`` (gaze in window pixels) into a GazeSample in degrees.

    Args:
        raw: the link sample (``EyeLink.getNewestSample()``).
        eye: ``"left"`` or ``"right"``: the recorded eye, used when the sample has both.
        mapper: window pixels <-> degrees.
        time_s: the sample's time on the session clock.

    Returns:
        ``valid=False`` (NaN position) while the eye is lost: gaze at pylink's MISSING_DATA,
        pupil area 0 (blink) or a position far off the screen.
    """
    if eye == "right" and raw.isRightSample():
        data = raw.getRightEye()
    elif eye == "left" and raw.isLeftSample():
        data = raw.getLeftEye()
    else:
        data = raw.getRightEye() if raw.isRightSample() else raw.getLeftEye()
    invalid = GazeSample(time_s=time_s, x_deg=math.nan, y_deg=math.nan, valid=False)
    if data is None:
        return invalid
    x_px, y_px = data.getGaze()
    pupil = data.getPupilSize()
    limit_x, limit_y = 10 * mapper.window_width_px, 10 * mapper.window_height_px
    if (
        x_px is None
        or y_px is None
        or not (math.isfinite(x_px) and math.isfinite(y_px))
        or x_px <= MISSING_DATA + 1
        or y_px <= MISSING_DATA + 1
        or abs(x_px) > limit_x
        or abs(y_px) > limit_y
        or (pupil is not None and pupil <= 0)
    ):
        return invalid
    x_deg, y_deg = mapper.window_px_to_deg(x_px, y_px)
    return GazeSample(time_s=time_s, x_deg=x_deg, y_deg=y_deg, valid=True)


class SampleGate:
    """Turns the newest link sample into this frame's GazeSample.

    Args:
        max_age_s: a sample older than this (two display frames) is reported invalid.
    """

    def __init__(self, *, max_age_s: float) -> None:
        self.max_age_s = float(max_age_s)
        self._last_time_ms: float | None = None
        self._last: GazeSample | None = None

    def accept(
        self, raw, *, tracker_now_ms: float, now_s: float, eye: str, mapper: WindowMapper
    ) -> GazeSample | None:
        """The GazeSample for ``raw`` (None when there is no sample yet).

        Args:
            raw: ``getNewestSample()``'s result.
            tracker_now_ms: the tracker's current time (``trackerTime()``), ms.
            now_s: the session clock now, seconds.
            eye: the recorded eye.
            mapper: window pixels <-> degrees.
        """
        if raw is None:
            return None
        time_ms = float(raw.getTime())
        age_s = (tracker_now_ms - time_ms) / 1000.0
        age_s = max(0.0, age_s) if math.isfinite(age_s) else 0.0
        is_new = time_ms != self._last_time_ms
        self._last_time_ms = time_ms
        if age_s > self.max_age_s:  # frozen: no gaze now
            self._last = None
            return GazeSample(time_s=now_s, x_deg=math.nan, y_deg=math.nan, valid=False)
        if not is_new and self._last is not None:
            return replace(self._last, is_new=False)
        self._last = gaze_from_link_sample(raw, eye=eye, mapper=mapper, time_s=now_s - age_s)
        return self._last
