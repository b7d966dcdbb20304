"""Training images in memory and random multi-scale crops from them; never touches the network.

An :class:`ImageBank` holds decoded uint8 images (from a cache folder written by
``fovea data images`` or from a packed ``.npz``). :func:`random_crops` draws square crops of a
random side between ``crop_px`` and the image's shorter side, resizes them to ``crop_px`` with an
anti-aliased filter (so a crop may show the whole scene or native-resolution detail), and flips
half of them horizontally. Everything is seeded: the same generator state gives the same batch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from generator.data.fetch import load_manifest
from generator.errors import FoveaError

Split = Literal["train", "heldout", "all"]
# The packed photographs that ship with the repository (train + held-out splits).
DEFAULT_PACK = Path(__file__).parent / "photos-1024.npz"
REPOSITORY_ROOT = DEFAULT_PACK.parents[2]


def resolve_source(source: str | Path) -> Path:
    """``source`` as given, or, when it is a relative path that does not exist from the current
    folder, the same path from the repository root, where the commands' defaults (such as
    ``generator/data/photos-1024.npz``) are written from."""
    source = Path(source)
    if source.is_absolute() or source.exists():
        return source
    from_root = REPOSITORY_ROOT / source
    return from_root if from_root.exists() else source


@dataclass
class ImageBank:
    """Decoded images with their manifest entries.

    Attributes:
        images: list of (3, H, W) uint8 tensors (on any device).
        entries: manifest entries, one per image (id, source, licence, split, ...).
    """

    images: list[torch.Tensor]
    entries: list[dict]

    def __len__(self) -> int:
        return len(self.images)

    def to(self, device) -> ImageBank:
        return ImageBank([im.to(device) for im in self.images], self.entries)


def _decode(data: bytes | Path, *, name: str) -> torch.Tensor:
    from generator.data.pixels import read_rgb

    array = np.asarray(read_rgb(data, name=name))
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def load_bank(*, source: Path, split: Split = "train", min_side_px: int = 0) -> ImageBank:
    """Load images from a cache folder (``manifest.json`` inside) or a packed ``.npz``.

    Args:
        source: cache folder or ``.npz`` written by :func:`generator.data.pack.pack_images`.
        split: which fixed split to load (a pack may hold only ``train``).
        min_side_px: skip images whose shorter side is smaller.
    """
    source = resolve_source(source)
    if source.suffix == ".npz":
        manifest = pack_manifest(source)
        with np.load(source, allow_pickle=False) as z:
            payload = {e["id"]: bytes(z[f"img_{i}"]) for i, e in enumerate(manifest["images"])}
        entries = [e for e in manifest["images"] if split == "all" or e["split"] == split]
        images = [_decode(payload[e["id"]], name=f"image {e['id']} in {source}") for e in entries]
    else:
        manifest = load_manifest(source)
        entries = [e for e in manifest["images"] if split == "all" or e["split"] == split]
        images = [
            _decode(
                source / e["cached_file"], name=f"{source / e['cached_file']} (in manifest.json)"
            )
            for e in entries
        ]
    keep = [i for i, im in enumerate(images) if min(im.shape[1:]) >= min_side_px]
    if not keep:
        least = f" of at least {min_side_px} px" if min_side_px else ""
        raise FoveaError(f"no {split} images{least} in {source}")
    return ImageBank([images[i] for i in keep], [entries[i] for i in keep])


def pack_manifest(path: Path) -> dict:
    """The manifest inside a packed ``.npz`` (no image is decoded)."""
    path = resolve_source(path)
    if not path.is_file():
        raise FoveaError(f"packed image file {path} does not exist; run `fovea data pack`")
    from generator.data.fetch import checked_manifest

    try:
        with np.load(path, allow_pickle=False) as z:
            manifest = json.loads(bytes(z["manifest"]).decode())
    except (OSError, ValueError, KeyError, EOFError) as error:
        raise FoveaError(f"{path} is not a packed image file: {error or 'empty'}") from None
    return checked_manifest(manifest, path, fields=("id", "split"))


def random_crops(
    bank: ImageBank,
    *,
    count: int,
    crop_px: int,
    generator: torch.Generator,
    max_zoom_out: float = 4.0,
    flip: bool = True,
    device=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random square crops at several scales, in [-1, 1].

    Args:
        bank: images to crop from.
        count: number of crops.
        crop_px: output side in pixels.
        generator: CPU torch generator; the only source of randomness.
        max_zoom_out: the crop's source side is drawn log-uniformly from
            ``[crop_px, min(crop_px * max_zoom_out, shorter image side)]``.
        flip: flip half of the crops horizontally.
        device: device of the output (defaults to the bank's).

    Returns:
        (count, 3, crop_px, crop_px) float32 crops and (count,) long indices into ``bank`` of
        the image each crop comes from.
    """
    n = len(bank)
    picks = torch.randint(n, (count,), generator=generator)
    u = torch.rand(count, 4, generator=generator)
    crops = []
    for k in range(count):
        i = int(picks[k])
        image = bank.images[i]
        h, w = image.shape[1:]
        short = min(h, w)
        lo = min(crop_px, short)
        hi = max(lo, min(int(crop_px * max_zoom_out), short))
        side = int(round(math.exp(math.log(lo) + float(u[k, 0]) * (math.log(hi) - math.log(lo)))))
        top = int(u[k, 1] * (h - side + 1))
        left = int(u[k, 2] * (w - side + 1))
        patch = image[:, top : top + side, left : left + side]
        if device is not None:
            patch = patch.to(device)
        patch = patch.float()[None] / 127.5 - 1.0
        if side != crop_px:
            patch = F.interpolate(
                patch, size=(crop_px, crop_px), mode="bilinear", antialias=True, align_corners=False
            )
        if flip and u[k, 3] < 0.5:
            patch = patch.flip(-1)
        crops.append(patch)
    out = torch.cat(crops).clamp(-1, 1)
    return out, picks.to(out.device)
