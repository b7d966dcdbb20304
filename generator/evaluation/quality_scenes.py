"""The quality benchmark's scenes: held-out photographs of the shipped pack, their bicubic
upsampling, and the natural-detail fields of an output (seams, scene fidelity, octave power)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generator.errors import FoveaError
from generator.evaluation.detail_metrics import octave_power_ratio, scene_psnr_db, seam_ratio
from generator.scene import Scene


@dataclass(frozen=True)
class BenchScene:
    """One held-out scene of the benchmark.

    Attributes:
        scene: the scene (pixels at the scene size, source, original at the output size).
        index: the photograph's index in the pack's held-out split.
        image_id: the photograph's manifest id.
        crop_px: (width, height) of the centre crop in the photograph's own pixels.
    """

    scene: Scene
    index: int
    image_id: str
    crop_px: tuple[int, int]

    @property
    def original_upsampled(self) -> bool:
        """Whether the crop is smaller than the output (the original is an upsampled photo)."""
        h, w = self.scene.original.shape[:2]
        return self.crop_px[0] < w or self.crop_px[1] < h

    def record(self) -> dict:
        return {
            "scene": self.scene.sha256,
            "scene_source": self.scene.source,
            "scene_index": self.index,
            "scene_image_id": self.image_id,
            "crop_px": list(self.crop_px),
            "original_upsampled": self.original_upsampled,
        }


def heldout_scenes(*, count: int, width_px: int, height_px: int, factor: int) -> list[BenchScene]:
    """Scenes 0 .. count - 1: held-out photograph i of the shipped pack, largest centre crop at
    the output's aspect ratio (source ``heldout:<image id>#crop=...``)."""
    from generator.data.images import DEFAULT_PACK, load_bank
    from generator.scene_crop import apply_crop, pick_crop
    from generator.scene_sources import scene_from_original

    bank = load_bank(source=DEFAULT_PACK, split="heldout")
    if not 1 <= count <= len(bank):
        raise FoveaError(
            f"--scenes {count}: the pack {DEFAULT_PACK.name} holds {len(bank)} held-out "
            f"photographs (1 to {len(bank)})"
        )
    out = []
    for i in range(count):
        image, image_id = bank.images[i], bank.entries[i]["id"]
        crop = pick_crop(*image.shape[1:], width_px=width_px, height_px=height_px)
        original = apply_crop(image, crop, width_px=width_px, height_px=height_px)
        source = f"heldout:{image_id}#{crop.describe()}"
        scene = scene_from_original(original, factor=factor, source=source)
        out.append(BenchScene(scene, i, image_id, (crop.width, crop.height)))
    return out


def bicubic_image(scene: Scene, *, width_px: int, height_px: int) -> np.ndarray:
    """The scene bicubic-upsampled to the output size, as the model sees it, (H, W, 3) uint8."""
    from generator.codecs import to_uint8_image
    from generator.scene import scene_tensor, upsample_scene

    return to_uint8_image(upsample_scene(scene_tensor(scene), height=height_px, width=width_px))


def detail_fields(image: np.ndarray, bench: BenchScene, *, factor: int, token_px: int) -> dict:
    """``seam_ratio``, ``scene_psnr_db`` and ``octave_power_ratio`` of an (H, W, 3) uint8 output
    of ``bench``'s scene (power against its original)."""
    return {
        "seam_ratio": seam_ratio(image, token_px=token_px),
        "scene_psnr_db": scene_psnr_db(image, bench.scene.pixels),
        "octave_power_ratio": octave_power_ratio(image, bench.scene.original, scene_factor=factor),
    }
