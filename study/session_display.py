"""The session's PsychoPy window: its size, background and monitor (the protocol's display, or
a small window for simulated sessions)."""

from __future__ import annotations

import math


def open_window(protocol, config, *, simulated: bool):
    """The PsychoPy window: the protocol's screen, or a small one for simulated sessions.

    Returns (window, monitor profile for the sidecar).
    """
    from psychopy import visual

    from study.display_check import build_monitor, monitor_profile

    p, cfg = protocol, config
    virtual_ok = simulated or cfg.allow_virtual_display
    monitor = build_monitor(p.display, with_gamma=not virtual_ok)
    profile = monitor_profile(monitor, p.display)
    fullscreen = (
        p.display.fullscreen if cfg.fullscreen is None else cfg.fullscreen
    ) and not simulated
    win = visual.Window(
        size=window_size_px(p)
        if simulated and not cfg.full_window
        else (p.display.width_px, p.display.height_px),
        fullscr=fullscreen,
        screen=p.display.screen,
        monitor=monitor,
        # A screen that cannot take the gamma table stops a real session.
        gammaErrorPolicy="warn" if virtual_ok else "raise",
        units="pix",
        color=background_rgb(p),
        colorSpace="rgb",
        allowGUI=not fullscreen,
        waitBlanking=not simulated,
        checkTiming=False,
    )
    win.mouseVisible = cfg.tracker == "dummy"
    return win, profile


def window_size_px(protocol) -> tuple[int, int]:
    """Simulated sessions: a window just large enough for the stimulus, every fixation mark and
    the response prompt's line.

    Positions are computed from the display geometry relative to the screen centre, so a smaller
    window only crops empty periphery; it flips several times faster on a virtual display.
    """
    from study.trial.presentation import PROMPT_OFFSET_DEG

    display = protocol.display.geometry()
    half_w = protocol.stimulus.image_width_px / 2
    half_h = protocol.stimulus.image_height_px / 2
    mark = protocol.fixation.mark_size_deg * display.pixels_per_degree
    # The prompt, PROMPT_OFFSET_DEG above or below the centre, one line of text (0.6 deg) high:
    # at many px/deg it lay outside a window fitted to the image alone.
    _, prompt_y = display.deg_to_screen_px(0.0, PROMPT_OFFSET_DEG)
    text = 0.6 * display.pixels_per_degree
    half_h = max(half_h, abs(float(prompt_y) - display.height_px / 2) + text)
    for condition in protocol.conditions:
        sx, sy = display.deg_to_screen_px(*condition.fixation_deg)
        half_w = max(half_w, abs(float(sx) - display.width_px / 2) + mark)
        half_h = max(half_h, abs(float(sy) - display.height_px / 2) + mark)
    width = min(display.width_px, max(640, 2 * math.ceil(half_w + 32)))
    height = min(display.height_px, max(480, 2 * math.ceil(half_h + 32)))
    return width, height


#: The texts and the fixation mark are black on a background at least this grey
#: (``[display] background_gray``), white on a darker one: black on a dark grey (0.1) was all but
#: invisible. Between the crossovers of black's and white's contrast on a gamma-corrected (0.18)
#: and an uncorrected sRGB screen (0.46).
INK_MIN_GRAY = 0.3


def ink_color(background_gray: float) -> str:
    """The colour of the participant's texts and of the fixation mark on ``background_gray``."""
    return "black" if background_gray >= INK_MIN_GRAY else "white"


def background_rgb(protocol) -> list[float]:
    """The protocol's background grey in PsychoPy's rgb space (-1 .. 1)."""
    g = 2.0 * protocol.display.background_gray - 1.0
    return [g, g, g]
