"""Display and stimulus geometry: pixels, centimetres and degrees of visual angle.

Conventions. Screen and image pixel coordinates are continuous: pixel ``i`` covers ``[i, i + 1)``,
origin at the top-left corner, x to the right, y down. Degrees are measured from the screen centre
(where the viewer's line of sight meets the screen at a right angle), x to the right, y up, as the
angle of each axis separately (``x_deg = atan(x_cm / distance_cm)``). Eccentricities are exact
angles between two lines of sight, not the small-angle approximation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from generator.errors import FoveaError


@dataclass(frozen=True)
class DisplayGeometry:
    """A flat screen viewed head-on from its centre.

    Attributes:
        width_px, height_px: resolution in pixels.
        width_cm, height_cm: physical size of the visible area in centimetres.
        distance_cm: eye to screen-centre distance in centimetres.
    """

    width_px: int
    height_px: int
    width_cm: float
    height_cm: float
    distance_cm: float

    def __post_init__(self) -> None:
        for name in ("width_px", "height_px", "width_cm", "height_cm", "distance_cm"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise FoveaError(f"display {name} must be a positive number, got {value!r}")

    @property
    def cm_per_px(self) -> tuple[float, float]:
        """Physical size of one pixel (x, y) in centimetres."""
        return self.width_cm / self.width_px, self.height_cm / self.height_px

    @property
    def pixels_per_degree(self) -> float:
        """Horizontal pixels spanned by the central degree of visual angle (the screen's minimum)."""
        return 2.0 * self.distance_cm * math.tan(math.radians(0.5)) / self.cm_per_px[0]

    def screen_px_to_cm(self, x_px, y_px):
        """Screen pixel coordinates -> centimetres from the screen centre (x right, y up)."""
        cx, cy = self.cm_per_px
        return (np.asarray(x_px) - self.width_px / 2) * cx, (
            self.height_px / 2 - np.asarray(y_px)
        ) * cy

    def screen_px_to_deg(self, x_px, y_px):
        """Screen pixel coordinates -> degrees from the screen centre (x right, y up)."""
        x_cm, y_cm = self.screen_px_to_cm(x_px, y_px)
        return np.degrees(np.arctan2(x_cm, self.distance_cm)), np.degrees(
            np.arctan2(y_cm, self.distance_cm)
        )

    def deg_to_screen_px(self, x_deg, y_deg):
        """Degrees from the screen centre (x right, y up) -> screen pixel coordinates."""
        cx, cy = self.cm_per_px
        x_cm = self.distance_cm * np.tan(np.radians(x_deg))
        y_cm = self.distance_cm * np.tan(np.radians(y_deg))
        return self.width_px / 2 + x_cm / cx, self.height_px / 2 - y_cm / cy

    def eccentricity_deg(self, x_px, y_px, gaze_x_px: float, gaze_y_px: float):
        """Exact angle in degrees between the lines of sight to (x, y) and to the gaze point.

        All coordinates are screen pixels; ``x_px``/``y_px`` may be arrays of any matching shape.
        """
        px, py = self.screen_px_to_cm(x_px, y_px)
        gx, gy = self.screen_px_to_cm(gaze_x_px, gaze_y_px)
        d = self.distance_cm
        dot = px * gx + py * gy + d * d
        # |p x g| for p = (px, py, d), g = (gx, gy, d): atan2 keeps precision at small angles.
        cross = np.sqrt((py * d - d * gy) ** 2 + (d * gx - px * d) ** 2 + (px * gy - py * gx) ** 2)
        return np.degrees(np.arctan2(cross, dot))

    def contains_screen_px(self, x_px: float, y_px: float) -> bool:
        return 0.0 <= x_px <= self.width_px and 0.0 <= y_px <= self.height_px

    def as_dict(self) -> dict:
        return asdict(self)


def default_display() -> DisplayGeometry:
    """The project's reference display: 27-inch 2560x1440 (59.8 x 33.6 cm) viewed from 60 cm."""
    return DisplayGeometry(
        width_px=2560, height_px=1440, width_cm=59.8, height_cm=33.6, distance_cm=60.0
    )


@dataclass(frozen=True)
class StimulusGeometry:
    """An image shown at native resolution (one image pixel per screen pixel) on a display.

    Attributes:
        display: the screen.
        image_width_px, image_height_px: the image size in pixels.
        left_px, top_px: screen position of the image's top-left corner; ``None`` centres it.
    """

    display: DisplayGeometry
    image_width_px: int
    image_height_px: int
    left_px: float | None = None
    top_px: float | None = None

    def __post_init__(self) -> None:
        for name in ("image_width_px", "image_height_px"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value > 0):
                raise FoveaError(f"image {name} must be a positive integer, got {value!r}")
        if (
            self.image_width_px > self.display.width_px
            or self.image_height_px > self.display.height_px
        ):
            raise FoveaError(
                f"image {self.image_width_px}x{self.image_height_px} px does not fit on the "
                f"{self.display.width_px}x{self.display.height_px} px display"
            )

    @property
    def origin_px(self) -> tuple[float, float]:
        """Screen pixel coordinates of the image's top-left corner."""
        left = (
            (self.display.width_px - self.image_width_px) / 2
            if self.left_px is None
            else self.left_px
        )
        top = (
            (self.display.height_px - self.image_height_px) / 2
            if self.top_px is None
            else self.top_px
        )
        return left, top

    def image_px_to_screen_px(self, x_px, y_px):
        left, top = self.origin_px
        return np.asarray(x_px) + left, np.asarray(y_px) + top

    def screen_px_to_image_px(self, x_px, y_px):
        left, top = self.origin_px
        return np.asarray(x_px) - left, np.asarray(y_px) - top

    def image_px_to_deg(self, x_px, y_px):
        """Image pixel coordinates -> degrees from the screen centre (x right, y up)."""
        return self.display.screen_px_to_deg(*self.image_px_to_screen_px(x_px, y_px))

    def deg_to_image_px(self, x_deg, y_deg):
        """Degrees from the screen centre (x right, y up) -> image pixel coordinates."""
        return self.screen_px_to_image_px(*self.display.deg_to_screen_px(x_deg, y_deg))

    def eccentricity_deg(self, x_px, y_px, gaze_px: tuple[float, float]):
        """Exact eccentricity in degrees of image points (x, y) from a gaze point (image px)."""
        sx, sy = self.image_px_to_screen_px(x_px, y_px)
        gx, gy = self.image_px_to_screen_px(*gaze_px)
        return self.display.eccentricity_deg(sx, sy, float(gx), float(gy))

    def check_gaze(self, gaze_px: tuple[float, float]) -> None:
        """Raise FoveaError unless the gaze point (image px) lies on the display."""
        gx, gy = (float(v) for v in self.image_px_to_screen_px(*gaze_px))
        if not (math.isfinite(gx) and math.isfinite(gy)):
            raise FoveaError(
                f"gaze {gaze_px[0]:g},{gaze_px[1]:g} (image px) is not a point: give finite numbers"
            )
        if not self.display.contains_screen_px(gx, gy):
            raise FoveaError(
                f"gaze {gaze_px[0]:g},{gaze_px[1]:g} (image px) is outside the "
                f"{self.display.width_px}x{self.display.height_px} px display"
            )
