"""What SR Research's Data Viewer needs from a trial: the onset messages (``SYNCTIME``,
``!V IMGLOAD``, ``!V IAREA``), the images actually shown (PNG files) and the trial variables known
only at its end.

Images are saved beside the EDF copies, in ``<eyetrack dir>/images`` (``SessionPaths.images_dir``:
``DATA/sourcedata/sub-<p>/ses-<s>/eyetrack/images``), one per interval kind and trial:
``trial-0007_foveated.png`` and ``trial-0007_full.png``. ``!V IMGLOAD`` names them relative to the
EDF's folder (``images/trial-0007_foveated.png``), which is where Data Viewer looks.

Coordinates in the messages are window pixels (origin top-left, y down), the space the EyeLink's
``screen_pixel_coords`` and ``DISPLAY_COORDS`` use; the image is drawn at the window centre.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Radius of the interest area around the gaze the foveated image was made for: the fovea
#: (about 5 deg across).
FOVEA_RADIUS_DEG = 2.5
IMAGES_FOLDER = "images"


def image_file_name(*, trial: int, kind: str) -> str:
    """``trial-0007_foveated.png`` (``kind``: ``foveated`` or ``full``)."""
    return f"trial-{int(trial):04d}_{kind}.png"


def image_ref(*, trial: int, kind: str) -> str:
    """The image's path relative to the EDF's folder (what ``!V IMGLOAD`` names)."""
    return f"{IMAGES_FOLDER}/{image_file_name(trial=trial, kind=kind)}"


def _window_px(presenter, x_deg: float, y_deg: float) -> tuple[int, int]:
    """Degrees from the screen centre -> window pixels (top-left origin, y down)."""
    x_pix, y_pix = presenter.deg_to_pix(x_deg, y_deg)
    width, height = presenter.win.size
    return int(round(width / 2 + x_pix)), int(round(height / 2 - y_pix))


def onset_messages(
    *,
    trial: int,
    interval: int,
    image_file: str,
    gaze_deg: tuple[float, float] | None,
    presenter,
) -> tuple[str, ...]:
    """The messages sent from the flip that shows interval ``interval``'s image.

    Interval 1: ``STIMULUS_ONSET trial <n>`` (the simulated participant times its fixation
    breaks from it), ``SYNCTIME`` (Data Viewer's time zero of the trial), the image and the
    foveal interest area; interval 2: ``STIMULUS2_ONSET`` and the image.

    Args:
        trial: the trial number.
        interval: 1 or 2.
        image_file: the shown image's path relative to the EDF's folder (``image_ref``).
        gaze_deg: the gaze the foveated image was made for, degrees (None: no interest area).
        presenter: the window (for pixel coordinates).
    """
    width, height = presenter.win.size
    load = f"!V IMGLOAD CENTER {image_file} {int(width) // 2} {int(height) // 2}"
    if interval != 1:
        return ("STIMULUS2_ONSET", load)
    messages = [f"STIMULUS_ONSET trial {int(trial)}", "SYNCTIME", load]
    if gaze_deg is not None:
        gx, gy = gaze_deg
        left, top = _window_px(presenter, gx - FOVEA_RADIUS_DEG, gy + FOVEA_RADIUS_DEG)
        right, bottom = _window_px(presenter, gx + FOVEA_RADIUS_DEG, gy - FOVEA_RADIUS_DEG)
        messages.append(f"!V IAREA ELLIPSE 1 {left} {top} {right} {bottom} fovea")
    return tuple(messages)


def save_shown_images(*, images_dir: Path, trial: int, foveated: np.ndarray, full: np.ndarray):
    """Write the two images shown in ``trial`` as PNG (fast compression: this runs between
    trials). Returns the two paths."""
    from PIL import Image

    images_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, image in (("foveated", foveated), ("full", full)):
        path = images_dir / image_file_name(trial=trial, kind=kind)
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path, compress_level=1)
        paths.append(path)
    return paths


def end_variables(row: dict) -> dict:
    """The ``!V TRIAL_VAR`` variables known at a trial's end (sent before ``TRIAL_RESULT``)."""
    return {
        "response": row.get("response"),
        "correct": row.get("correct"),
        "rt_s": row.get("rt_s"),
        "tokens": row.get("tokens"),
        "tokens_full": row.get("tokens_full"),
        "abort_reason": row.get("abort_reason"),
    }
