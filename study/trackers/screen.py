"""Window pixels <-> degrees of visual angle for the trackers.

The EyeLink works in the window's pixel coordinates (``screen_pixel_coords``: origin at the
window's top-left, y down); the study works in degrees from the screen centre (x right, y up). The
window is assumed centred on the display (a full-screen window is the usual case; a smaller test
window sits in the middle), so window pixels map onto display pixels by a fixed offset and then
through ``generator.DisplayGeometry`` (exact per-axis angles, the same convention as the
generator's layouts).
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.errors import FoveaError
from generator.geometry import DisplayGeometry


@dataclass(frozen=True)
class WindowMapper:
    """Converts between window pixels and degrees.

    Attributes:
        display: the physical screen (resolution, size, viewing distance).
        window_width_px, window_height_px: the PsychoPy window's size in pixels.
    """

    display: DisplayGeometry
    window_width_px: int
    window_height_px: int

    @property
    def _offset_px(self) -> tuple[float, float]:
        # Window top-left in display pixels (window centred on the display).
        return (
            (self.display.width_px - self.window_width_px) / 2,
            (self.display.height_px - self.window_height_px) / 2,
        )

    def window_px_to_deg(self, x_px: float, y_px: float) -> tuple[float, float]:
        """Window pixels (origin top-left, y down) -> degrees from the screen centre (y up)."""
        ox, oy = self._offset_px
        x_deg, y_deg = self.display.screen_px_to_deg(x_px + ox, y_px + oy)
        return float(x_deg), float(y_deg)

    def deg_to_window_px(self, x_deg: float, y_deg: float) -> tuple[float, float]:
        """Degrees from the screen centre (y up) -> window pixels (origin top-left, y down)."""
        ox, oy = self._offset_px
        x_px, y_px = self.display.deg_to_screen_px(x_deg, y_deg)
        return float(x_px) - ox, float(y_px) - oy

    def centred_px_to_deg(self, x_px: float, y_px: float) -> tuple[float, float]:
        """PsychoPy ``pix`` units (origin at the window centre, y up) -> degrees."""
        return self.window_px_to_deg(
            x_px + self.window_width_px / 2, self.window_height_px / 2 - y_px
        )


def display_from_window(win) -> DisplayGeometry:
    """A DisplayGeometry from a PsychoPy window's monitor (when the protocol gives none).

    Raises:
        FoveaError: when the monitor lacks its width or viewing distance.
    """
    monitor = getattr(win, "monitor", None)
    width_cm = monitor.getWidth() if monitor is not None else None
    distance_cm = monitor.getDistance() if monitor is not None else None
    if not width_cm or not distance_cm:
        raise FoveaError(
            f"window monitor {getattr(monitor, 'name', None)!r} has no width_cm/distance_cm "
            f"(width={width_cm!r}, distance={distance_cm!r}); pass the protocol's display "
            f"geometry to make_tracker(display=...)"
        )
    size = monitor.getSizePix() or list(win.size)
    width_px, height_px = int(size[0]), int(size[1])
    return DisplayGeometry(
        width_px=width_px,
        height_px=height_px,
        width_cm=float(width_cm),
        height_cm=float(width_cm) * height_px / width_px,  # square pixels
        distance_cm=float(distance_cm),
    )


def mapper_for_window(win, display: DisplayGeometry | None) -> WindowMapper:
    """The mapper for ``win`` on ``display`` (or the window's monitor when ``display`` is None)."""
    display = display if display is not None else display_from_window(win)
    width_px, height_px = (int(v) for v in win.size)
    return WindowMapper(display=display, window_width_px=width_px, window_height_px=height_px)
