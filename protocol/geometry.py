"""Protocol -> stimulus geometry: where the stimulus lies on the display, in one frozen dataclass.

Every part of the kit that needs the geometry of a protocol's stimulus (the session, the stimulus
sets, the demo, the realtime benchmark) calls ``stimulus_geometry``. Geometry travels as one JSON
record, ``geometry_record``: ``{"display": {width_px, height_px, width_cm, height_cm,
distance_cm}, "image_size_px": [w, h], "image_origin_px": [x, y]}``; ``geometry_from_record``
reads it back, and reads a session sidecar the same way (its ``display`` table and
``image_size_px``; no origin: the stimulus is centred).
"""

from __future__ import annotations

from generator.geometry import DisplayGeometry, StimulusGeometry

# The display fields DisplayGeometry takes, in the records' order.
DISPLAY_FIELDS = ("width_px", "height_px", "width_cm", "height_cm", "distance_cm")


def stimulus_geometry(protocol) -> StimulusGeometry:
    """The protocol's stimulus on its display: centred, one image pixel per screen pixel.

    Args:
        protocol: ``protocol.Protocol``.
    """
    return StimulusGeometry(
        display=protocol.display.geometry(),
        image_width_px=protocol.stimulus.image_width_px,
        image_height_px=protocol.stimulus.image_height_px,
    )


def geometry_record(geometry: StimulusGeometry) -> dict:
    """JSON-able record of ``geometry`` (also the stimulus sets' geometry identity: keep stable)."""
    return {
        "display": geometry.display.as_dict(),
        "image_size_px": [geometry.image_width_px, geometry.image_height_px],
        "image_origin_px": [float(v) for v in geometry.origin_px],
    }


def geometry_from_record(record: dict) -> StimulusGeometry:
    """The geometry of a ``geometry_record`` or of a session sidecar (centred when the record
    has no ``image_origin_px``); extra display fields (``refresh_hz``, ...) are ignored."""
    display = record["display"]
    width_px, height_px = (int(v) for v in record["image_size_px"])
    origin = record.get("image_origin_px")
    return StimulusGeometry(
        display=DisplayGeometry(
            width_px=int(display["width_px"]),
            height_px=int(display["height_px"]),
            width_cm=float(display["width_cm"]),
            height_cm=float(display["height_cm"]),
            distance_cm=float(display["distance_cm"]),
        ),
        image_width_px=width_px,
        image_height_px=height_px,
        left_px=None if origin is None else float(origin[0]),
        top_px=None if origin is None else float(origin[1]),
    )


def image_size_deg(geometry: StimulusGeometry) -> tuple[float, float]:
    """The image's width and height in degrees of visual angle, as the angles between its
    opposite edges' midpoints seen from the eye (``2 atan(w / 2d)`` for a centred image), not
    pixels over the central pixels per degree (which overstates a 1024 px image at 45 px/deg by
    0.3 deg: a pixel off the line of sight subtends less)."""
    w, h = geometry.image_width_px, geometry.image_height_px
    (left, right), _ = geometry.image_px_to_deg([0.0, float(w)], [h / 2, h / 2])
    _, (top, bottom) = geometry.image_px_to_deg([w / 2, w / 2], [0.0, float(h)])
    return float(right - left), float(top - bottom)


def display_record(display) -> dict:
    """The sidecar's ``display`` table of ``protocol.schema.DisplaySettings``: the geometry
    fields, ``refresh_hz`` and ``pixels_per_degree``."""
    record = {name: getattr(display, name) for name in DISPLAY_FIELDS}
    record["refresh_hz"] = display.refresh_hz
    record["pixels_per_degree"] = display.geometry().pixels_per_degree
    return record
