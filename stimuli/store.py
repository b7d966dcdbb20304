"""The content-addressed image store of a stimulus set.

Every image is stored once under a key: the SHA-256 of a canonical JSON of everything that
determines its pixels (model fingerprint, seed, conditioning, scene, layout spec, gaze, geometry,
sampler settings; for references whether it is the generated twin or the original photograph). Files are lossless PNGs at ``objects/<key[:2]>/<key>.png``, written atomically; the
manifest records each file's own SHA-256 so that corruption is detected.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from generator.atomic import write_atomic
from generator.errors import FoveaError

KEY_FORMAT = 2


def stimulus_key(*, fingerprint: dict, geometry: dict, stimulus) -> str:
    """SHA-256 hex key of one planned image.

    Args:
        fingerprint: ``ModelFingerprint.as_dict()`` (its ``model`` name is left out: a moved model
            directory keeps its keys; the weights hash identifies it).
        geometry: ``protocol.geometry.geometry_record(...)``.
        stimulus: ``PlannedStimulus``.
    """
    model = {k: v for k, v in fingerprint.items() if k != "model"}
    payload = {
        "format": KEY_FORMAT,
        "model": model,
        "geometry": geometry,
        "seed": int(stimulus.seed),
        "conditioning": stimulus.conditioning,
        "scene": stimulus.scene_sha256,
        "reference": stimulus.reference,
        "spec": stimulus.spec.as_dict(),
        "gaze_px": None
        if stimulus.gaze_px is None
        else [round(float(v), 3) for v in stimulus.gaze_px],
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ObjectStore:
    """PNG files addressed by key under ``root/objects``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def relpath(self, key: str) -> str:
        return f"objects/{key[:2]}/{key}.png"

    def path(self, key: str) -> Path:
        return self.root / self.relpath(key)

    def write(self, key: str, image: np.ndarray) -> tuple[str, str, int]:
        """Store ``image`` ((H, W, 3) uint8); returns (relative path, file SHA-256, bytes)."""
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", compress_level=6)
        data = buffer.getvalue()
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)  # stopped mid-write: no stray temporary in the set
        return self.relpath(key), hashlib.sha256(data).hexdigest(), len(data)

    def read(self, key: str) -> np.ndarray:
        return read_png(self.path(key))

    def existing(self, key: str) -> tuple[str, str, int] | None:
        """(relative path, SHA-256, bytes) of a readable stored image, or None."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            read_png(path)
        except FoveaError:
            return None
        return self.relpath(key), sha256_file(path), path.stat().st_size


def read_png(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 from a stored PNG; FoveaError if unreadable."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as error:
        raise FoveaError(f"stimulus image {path} is unreadable: {error}") from None
