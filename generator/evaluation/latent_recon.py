"""Reconstruction quality of the latent autoencoder on held-out photographs: the upper bound of any
image a model in its latent space can produce, next to pixel space's (patchify/unpatchify is exact).

Centre crops of every held-out photo at native resolution (photos smaller than a crop are skipped),
scored against the original 8-bit pixels: PSNR and SSIM (``skimage.metrics``, whole crop) and
FovVideoVDP JOD (the crop shown at native resolution on the default display, fixation at its
centre), as in ``fovea bench quality``. Beside them, the same scores of plain resampling at the
autoencoder's factor (area down, bilinear up): a well-trained autoencoder beats it by several dB;
one that does not is limited by its training, not by its latent size.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from generator.codecs import to_uint8_image
from generator.data.images import DEFAULT_PACK, load_bank
from generator.evaluation.quality_metrics import JodMetric, fovea_psnr_ssim
from generator.geometry import default_display
from generator.tokens import patchify, unpatchify
from generator.training.autoencoder import encode


def centre_crop(image: torch.Tensor, crop_px: int) -> torch.Tensor | None:
    """(3, H, W) uint8 -> (3, crop, crop), or None when the image is smaller."""
    h, w = image.shape[1:]
    if min(h, w) < crop_px:
        return None
    top, left = (h - crop_px) // 2, (w - crop_px) // 2
    return image[:, top : top + crop_px, left : left + crop_px]


def _summary(values: list[float]) -> dict:
    if not values:
        return {"median": None, "mean": None, "min": None}
    return {
        "median": float(statistics.median(values)),
        "mean": float(statistics.fmean(values)),
        "min": float(min(values)),
    }


def resampled(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Area-downsample by ``factor`` and bilinear-upsample back: a fixed linear "autoencoder" with
    3 channels per cell, the floor a trained one of the same factor should clear."""
    small = F.interpolate(x, scale_factor=1 / factor, mode="area")
    return F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)


@torch.no_grad()
def reconstruction(ae, settings, *, factor: int, progress=print) -> dict:
    """``{"latent": [one record per crop size], "pixel": {...}}`` for the held-out photos."""
    bank = load_bank(source=Path(settings.data or DEFAULT_PACK), split="heldout")
    jod = JodMetric(default_display()) if settings.jod else None
    records, pixel_error = [], 0.0
    for crop_px in settings.recon_crops_px:
        psnr, ssim, jods, ids, latents, base = [], [], [], [], [], []
        for image, entry in zip(bank.images, bank.entries, strict=True):
            crop = centre_crop(image, crop_px)
            if crop is None:
                continue
            x = crop.float()[None] / 127.5 - 1.0
            z = encode(ae, x)
            latents.append(z.flatten())
            test = to_uint8_image(ae.decode(z, return_dict=False)[0])
            ref = crop.permute(1, 2, 0).numpy()
            mask = np.ones(ref.shape[:2], bool)
            p, s = fovea_psnr_ssim(test, ref, mask)
            psnr.append(p)
            ssim.append(s)
            ids.append(entry["id"])
            base.append(fovea_psnr_ssim(to_uint8_image(resampled(x, factor)), ref, mask))
            if jod is not None:
                jods.append(jod.jod(test, ref, (crop_px / 2, crop_px / 2)))
            tokens = patchify(x, 16)  # pixel space: tokens of the same crop and back
            back = unpatchify(tokens, crop_px // 16, crop_px // 16, 16)
            pixel_error = max(pixel_error, float((back - x).abs().max()))
        z_all = torch.cat(latents) if latents else torch.zeros(1)
        record = {
            "crop_px": crop_px,
            "images": len(psnr),
            "image_ids": ids,
            "psnr_db": psnr,
            "ssim": ssim,
            "jod": jods or None,
            "resample_baseline_psnr_db_median": _summary([b[0] for b in base])["median"],
            "resample_baseline_ssim_median": _summary([b[1] for b in base])["median"],
            "latent_mean": float(z_all.mean()),
            "latent_std": float(z_all.std()),
        }
        for name, values in (("psnr_db", psnr), ("ssim", ssim), ("jod", jods)):
            for stat, value in _summary(values).items():
                record[f"{name}_{stat}"] = value
        progress(
            f"reconstruction {crop_px} px, {len(psnr)} held-out photos: "
            f"PSNR {record['psnr_db_median']} dB, SSIM {record['ssim_median']}, "
            f"JOD {record['jod_median']}; area-down/bilinear-up x{factor}: "
            f"PSNR {record['resample_baseline_psnr_db_median']} dB"
        )
        records.append(record)
    pixel = {
        "patch_px": 16,
        "max_abs_error": pixel_error,
        "lossless": pixel_error == 0.0,
        "note": "patchify/unpatchify round trip of the same crops: pixel space loses nothing",
    }
    return {"latent": records, "pixel": pixel}
