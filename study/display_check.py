"""The display a session runs on: the PsychoPy ``Monitor`` built from the protocol, and the
check at start that the screen is the one the protocol describes.

Durations are counted in frames of ``[display] refresh_hz``, so a 120 Hz panel run with
``refresh_hz = 60`` would halve every duration: ``fovea run`` measures the refresh rate
(``win.getActualFrameRate``) and the window size once the window is open and refuses to go on
when either differs from the protocol by more than ``[display] refresh_tolerance`` (rate) or at
all (size). A virtual display (Xvfb, software OpenGL) has no refresh rate: ``fovea run`` refuses
it unless ``--allow-virtual-display``; then, and in simulations (``fovea simulate``, ``fovea
demo``: a simulated clock, a deliberately small window), the measurement is recorded in the
sidecar but not enforced.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

from generator.errors import FoveaError

#: Substrings of software OpenGL renderers (Mesa's llvmpipe/softpipe/swrast: no real screen).
SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "software rasterizer")
#: Set by ``study.xvfb.virtual_display`` to the DISPLAY of the Xvfb it started.
XVFB_ENV = "FOVEA_XVFB_DISPLAY"


class DisplayRefused(FoveaError):
    """The screen is not the protocol's (refresh rate, size, or a virtual display);
    ``measurement``: what the window reported (the run records it with the refusal)."""

    def __init__(self, message: str, measurement: DisplayMeasurement | None = None):
        super().__init__(message)
        self.measurement = measurement


@dataclass
class DisplayMeasurement:
    """What the open window reports.

    Attributes:
        measured_refresh_hz: ``win.getActualFrameRate`` (None: no stable rate was found).
        window_size_px: (width, height) of the window in pixels.
        gl_renderer: the OpenGL renderer string.
        virtual: a virtual display (software renderer, or the Xvfb ``study.xvfb`` started).
        problems: why ``fovea run`` would refuse it (empty: fits the protocol).
        enforced: the problems stop the session (False: recorded only).
    """

    measured_refresh_hz: float | None
    window_size_px: tuple[int, int]
    gl_renderer: str
    virtual: bool
    problems: list[str] = field(default_factory=list)
    enforced: bool = True

    def record(self) -> dict:
        """The sidecar's ``display_check`` entry of a run."""
        data = asdict(self)
        data["window_size_px"] = list(self.window_size_px)
        return data


def gl_renderer() -> str:
    """The current OpenGL context's renderer string ('' when it cannot be read)."""
    try:
        from pyglet import gl

        return str(gl.gl_info.get_renderer())
    except Exception:  # noqa: BLE001 - a missing string only weakens the virtual-display test
        return ""


def is_virtual_display(renderer: str, display: str | None = None) -> bool:
    """A software OpenGL renderer, or the X display being the Xvfb ``study.xvfb`` started."""
    if any(name in renderer.lower() for name in SOFTWARE_RENDERERS):
        return True
    display = os.environ.get("DISPLAY") if display is None else display
    return bool(display) and display == os.environ.get(XVFB_ENV)


def measure_display(win) -> tuple[float | None, tuple[int, int], str]:
    """(refresh rate in Hz or None, window size in px, GL renderer) of an open window; about
    half a second of flips at 60 Hz."""
    rate = win.getActualFrameRate(nIdentical=10, nMaxFrames=120, nWarmUpFrames=10, threshold=1)
    width, height = (int(v) for v in win.size)
    return (None if rate is None else float(rate)), (width, height), gl_renderer()


def display_problems(
    *,
    display,
    measured_refresh_hz: float | None,
    window_size_px: tuple[int, int],
    check_size: bool = True,
    check_rate: bool = True,
) -> list[str]:
    """Why the measured screen does not fit the protocol's ``display`` (``DisplaySettings``)."""
    problems = []
    nominal = display.refresh_hz
    if check_rate and measured_refresh_hz is None:
        problems.append(f"no stable refresh rate could be measured (protocol: {nominal:g} Hz)")
    elif check_rate and abs(measured_refresh_hz - nominal) > display.refresh_tolerance * nominal:
        problems.append(
            f"the screen refreshes at {measured_refresh_hz:.2f} Hz, the protocol says "
            f"refresh_hz = {nominal:g} (tolerance {100 * display.refresh_tolerance:g} %)"
        )
    want = (display.width_px, display.height_px)
    if check_size and tuple(window_size_px) != want:
        problems.append(
            f"the window is {window_size_px[0]}x{window_size_px[1]} px, the protocol says "
            f"{want[0]}x{want[1]}"
        )
    return problems


def check_display(
    win, *, display, simulated: bool, allow_virtual: bool, check_size: bool = True
) -> DisplayMeasurement:
    """Measure the open window and decide (see the module docstring).

    Raises:
        DisplayRefused: a real-clock session on a virtual display without ``allow_virtual``, or
            on a screen whose rate or size differ from the protocol.
    """
    rate, size, renderer = measure_display(win)
    virtual = is_virtual_display(renderer)
    result = DisplayMeasurement(
        measured_refresh_hz=rate, window_size_px=size, gl_renderer=renderer, virtual=virtual
    )
    if not simulated and virtual and not allow_virtual:
        why = (
            f"this is a virtual display ({renderer or os.environ.get('DISPLAY')}): no real "
            "refresh rate or timing; run on the lab screen, or pass --allow-virtual-display"
        )
        result.problems = [why]
        raise DisplayRefused(why, result)
    # On a virtual display the rate means nothing (no vsync): only the size is checked.
    result.problems = display_problems(
        display=display,
        measured_refresh_hz=rate,
        window_size_px=size,
        check_size=check_size and not simulated,
        check_rate=not virtual,
    )
    result.enforced = not simulated
    if result.problems and result.enforced:
        raise DisplayRefused("; ".join(result.problems) + " (nothing was run)", result)
    return result


def check_session_display(
    win, *, display, simulated: bool, allow_virtual: bool, run_record: dict, say
) -> DisplayMeasurement:
    """``check_display`` for a session's run: the measurement into ``run_record``
    (``display_check``, also when the screen is refused), a console line when it is recorded but
    not enforced.

    Raises:
        DisplayRefused: see ``check_display``.
    """
    try:
        measured = check_display(
            win, display=display, simulated=simulated, allow_virtual=allow_virtual
        )
    except DisplayRefused as refused:
        if refused.measurement is not None:
            run_record["display_check"] = refused.measurement.record()
        raise
    run_record["display_check"] = measured.record()
    rate = measured.measured_refresh_hz
    if measured.virtual:
        shown = f"{rate:.1f} Hz" if rate else "refresh rate not measured"
        say(f"display: virtual ({measured.gl_renderer}), {shown}: timing not verified")
    if measured.problems:  # only a simulation gets here with problems
        say("display: " + "; ".join(measured.problems) + " (simulation: recorded only)")
    return measured


def build_monitor(display, *, with_gamma: bool = True):
    """A ``psychopy.monitors.Monitor`` for the protocol's ``display`` (not saved to PsychoPy's
    monitor centre): its width (cm), distance (cm), resolution and, when given and
    ``with_gamma``, gamma, so ``deg`` units and the gamma table are right. Virtual displays get
    no gamma: Xvfb has no gamma ramp, and PsychoPy 2026.2 raises there whatever the window's
    ``gammaErrorPolicy``."""
    from psychopy import monitors

    monitor = monitors.Monitor(
        "fovea-protocol",
        width=display.width_cm,
        distance=display.distance_cm,
        gamma=display.gamma if with_gamma else None,
        autoLog=False,
    )
    monitor.setSizePix([display.width_px, display.height_px])
    return monitor


def monitor_profile(monitor, display) -> dict:
    """The monitor's profile for the sidecar: the protocol's gamma and whether the window
    applied it (``gamma_applied``)."""
    return {
        "name": monitor.name,
        "width_cm": monitor.getWidth(),
        "distance_cm": monitor.getDistance(),
        "size_px": [int(v) for v in monitor.getSizePix()],
        "gamma": None if display.gamma is None else _plain(display.gamma),
        "gamma_applied": monitor.getGamma() is not None,
    }


def _plain(value):
    try:
        return float(value)
    except TypeError:
        return [_plain(v) for v in value]
