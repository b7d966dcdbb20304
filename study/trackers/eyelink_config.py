"""The EyeLink's configuration at the start of a session, as SR Research's templates send it
(file and link data filters, sampling rate, eye, calibration type, screen geometry), and what
the tracker reports back it does (the recorded eye, the sampling rate)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)
EYES = {0: "left", 1: "right", 2: "binocular"}  # eyeAvailable()


def tracker_major_version(el) -> int:
    """The major version from ``getTrackerVersionString()`` (e.g. 5 for ``EYELINK CL 5.50``),
    0 when unknown (dummy mode)."""
    try:
        return int(el.getTrackerVersionString().split()[-1].split(".")[0])
    except (AttributeError, IndexError, ValueError, RuntimeError):
        return 0


def send_configuration(tracker) -> None:
    """Data filters, sampling rate, eye, calibration type and screen geometry for the window;
    a refused sample rate leaves ``tracker.sampling_rate_hz`` None (read back when recording)."""
    s = tracker.settings
    version = tracker_major_version(tracker.el)
    htarget = ",HTARGET" if version > 3 else ""  # head target sticker (EyeLink 1000 Plus on)
    tracker._command("file_event_filter = LEFT,RIGHT,FIXATION,SACCADE,BLINK,MESSAGE,BUTTON,INPUT")
    tracker._command(
        f"file_sample_data = LEFT,RIGHT,GAZE,HREF,RAW,AREA,GAZERES,BUTTON,STATUS,INPUT{htarget}"
    )
    tracker._command("link_event_filter = LEFT,RIGHT,FIXATION,SACCADE,BLINK,BUTTON,FIXUPDATE,INPUT")
    tracker._command(f"link_sample_data = LEFT,RIGHT,GAZE,GAZERES,AREA,STATUS,INPUT{htarget}")
    rate = int(s.sampling_rate_hz)
    if tracker._command(f"sample_rate = {rate}") == 0:
        tracker.sampling_rate_hz = float(rate)
    else:
        tracker.message(f"FOVEA_WARNING sample_rate {rate} refused by the Host PC")
    tracker._command("binocular_enabled = NO")
    tracker._command(f"active_eye = {s.eye.upper()}")
    tracker._command(f"calibration_type = {s.calibration_type}")
    tracker._command("button_function 5 'accept_target_fixation'")
    width_px, height_px = tracker.mapper.window_width_px, tracker.mapper.window_height_px
    tracker._command(f"screen_pixel_coords = 0 0 {width_px - 1} {height_px - 1}")
    # DISPLAY_COORDS in the EDF lets Data Viewer draw the trials in the right space.
    tracker.message(f"DISPLAY_COORDS 0 0 {width_px - 1} {height_px - 1}")
    d = tracker.mapper.display
    half_w_mm = width_px * d.cm_per_px[0] * 5.0  # cm -> mm, half width
    half_h_mm = height_px * d.cm_per_px[1] * 5.0
    tracker._command(
        f"screen_phys_coords = {-half_w_mm:.1f} {half_h_mm:.1f} {half_w_mm:.1f} {-half_h_mm:.1f}"
    )
    tracker._command(f"screen_distance = {d.distance_cm * 10:.0f}")
    tracker.message(f"FOVEA_TRACKER eye {s.eye.upper()} rate {rate}")


def read_recorded_eye(tracker) -> str | None:
    """``eyeAvailable()`` as ``left``/``right``/``binocular`` into ``tracker.recorded_eye``; a
    change is logged in the EDF (``FOVEA_EYE``), and so is a mismatch with the protocol's eye
    (``FOVEA_EYE_MISMATCH``, e.g. the operator switched eye in camera setup)."""
    try:
        eye = EYES.get(tracker.el.eyeAvailable())
    except RuntimeError:
        return tracker.recorded_eye
    if eye is not None and eye != tracker.recorded_eye:
        tracker.recorded_eye = eye
        tracker.message(f"FOVEA_EYE {eye.upper()}")
        wanted = tracker.settings.eye
        if eye in ("left", "right") and eye != wanted:
            log.warning("the EyeLink records the %s eye, the protocol asks %s", eye, wanted)
            tracker.message(f"FOVEA_EYE_MISMATCH protocol {wanted.upper()}")
    return tracker.recorded_eye


def read_sampling_rate(tracker) -> None:
    """``getSampleRate()`` (meaningful while recording) into ``tracker.sampling_rate_hz`` when it
    differs (``FOVEA_SAMPLE_RATE`` in the EDF): the real rate after a refused ``sample_rate``."""
    try:
        rate = float(tracker.el.getSampleRate())
    except (AttributeError, RuntimeError, TypeError, ValueError):
        return
    if rate > 0 and rate != tracker.sampling_rate_hz:
        tracker.sampling_rate_hz = rate
        tracker.message(f"FOVEA_SAMPLE_RATE {rate:g}")


def clock_offset_ms(tracker) -> float | None:
    """Tracker time minus session-clock time, ms (``trackerTime() - 1000 * clock()``): adds to a
    session time to give the EDF's time; None when the tracker reports no time (dummy mode)."""
    try:
        tracker_ms = float(tracker.el.trackerTime())
    except (AttributeError, RuntimeError, TypeError, ValueError):
        return None
    if not 0.0 < tracker_ms < 4294967295.0:  # dummy mode answers 2**32 - 1
        return None
    return tracker_ms - 1000.0 * float(tracker.clock())
