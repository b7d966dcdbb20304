"""Sample sheets: full-resolution samples, foveated samples with the fixation marked, held-out
photographs, and radially averaged power spectra (samples vs held-out crops)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def radial_power_spectrum(image: np.ndarray, bins: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of the luminance of an (H, W, 3) uint8 image.

    Returns:
        (bins,) frequencies in cycles/pixel and (bins,) mean power.
    """
    y = image.astype(np.float64).mean(axis=2)
    y = (y - y.mean()) * np.outer(np.hanning(y.shape[0]), np.hanning(y.shape[1]))
    power = np.abs(np.fft.fftshift(np.fft.fft2(y))) ** 2
    h, w = y.shape
    fy = np.fft.fftshift(np.fft.fftfreq(h))[:, None]
    fx = np.fft.fftshift(np.fft.fftfreq(w))[None, :]
    r = np.hypot(fy, fx)
    edges = np.linspace(1.0 / min(h, w), 0.5, bins + 1)
    idx = np.digitize(r.ravel(), edges) - 1
    ok = (idx >= 0) & (idx < bins)
    sums = np.bincount(idx[ok], weights=power.ravel()[ok], minlength=bins)
    counts = np.maximum(np.bincount(idx[ok], minlength=bins), 1)
    return (edges[:-1] + edges[1:]) / 2, sums / counts


def _grid(images: list[np.ndarray], cols: int, tile: int) -> np.ndarray:
    from PIL import Image

    rows = max(1, (len(images) + cols - 1) // cols)
    cols = max(1, min(cols, len(images)))
    sheet = np.full((rows * tile, cols * tile, 3), 255, dtype=np.uint8)
    for i, im in enumerate(images):
        small = np.asarray(Image.fromarray(im).resize((tile, tile), Image.Resampling.LANCZOS))
        r, c = divmod(i, cols)
        sheet[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] = small
    return sheet


def _mark(image: np.ndarray, gaze_px, size: int) -> np.ndarray:
    out = image.copy()
    x, y = int(gaze_px[0]), int(gaze_px[1])
    h, w = out.shape[:2]
    for d in range(-size, size + 1):
        for t in (-1, 0, 1):
            if 0 <= y + t < h and 0 <= x + d < w:
                out[y + t, x + d] = (255, 0, 0)
            if 0 <= y + d < h and 0 <= x + t < w:
                out[y + d, x + t] = (255, 0, 0)
    return out


def heldout_crops(resolution: int, count: int = 8, seed: int = 0) -> list[np.ndarray]:
    """Crops of held-out photographs from the packed data (uint8, resolution x resolution)."""
    import torch

    from generator.data.images import DEFAULT_PACK, load_bank, random_crops

    bank = load_bank(source=DEFAULT_PACK, split="heldout")
    x, _ = random_crops(
        bank, count=count, crop_px=resolution, generator=torch.Generator().manual_seed(seed)
    )
    return [
        ((im.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        for im in x
    ]


def write_sheets(*, out_dir: Path, full: list[np.ndarray], foveated: list, resolution: int) -> dict:
    """Write the PNG sheets and the spectrum plot into ``out_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    tile = 256
    paths = {}
    paths["full"] = out_dir / "samples_full.png"
    Image.fromarray(_grid(full, cols=4, tile=tile)).save(paths["full"])
    marked = [_mark(im, gaze, size=resolution // 40) for im, gaze, _ in foveated]
    paths["foveated"] = out_dir / "samples_foveated_fixation.png"
    Image.fromarray(_grid(marked, cols=4, tile=tile)).save(paths["foveated"])
    held = heldout_crops(resolution, count=8)
    paths["heldout"] = out_dir / "heldout_photos.png"
    Image.fromarray(_grid(held, cols=4, tile=tile)).save(paths["heldout"])
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    for label, group, color in (("held-out crops", held, "k"), ("samples (full res)", full, "C1")):
        spectra = [radial_power_spectrum(im) for im in group]
        f = spectra[0][0]
        ax.loglog(
            f,
            np.exp(np.mean([np.log(s + 1e-12) for _, s in spectra], axis=0)),
            color=color,
            label=label,
        )
    ax.set_xlabel("spatial frequency (cycles/pixel)")
    ax.set_ylabel("power (geometric mean)")
    ax.legend()
    fig.tight_layout()
    paths["spectrum"] = out_dir / "power_spectrum.png"
    fig.savefig(paths["spectrum"])
    plt.close(fig)
    return {k: str(v) for k, v in paths.items()}
