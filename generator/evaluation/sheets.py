"""The quality benchmark's pictures: one row per held-out scene (original | scene upsampled
(bicubic) | full-resolution generation | foveated generation with the fixation and the token
layout drawn over it), and the radially averaged power spectra of the four."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from generator.draw import draw_layout
from generator.evaluation.detail_metrics import octave_bands_cpp, radial_power_spectrum

COLUMNS = (
    ("original", "original photograph"),
    ("bicubic", "scene upsampled (bicubic)"),
    ("full", "full-resolution generation"),
    ("foveated", "foveated generation, fixation + layout"),
)
_HEADER_PX = 22


def _tile(image: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.LANCZOS))


def scene_sheet(rows: list[dict], *, tile_px: int = 320) -> np.ndarray:
    """(H, W, 3) uint8 sheet: a header, then one row per scene of the four columns.

    Each row dict holds ``original``, ``bicubic``, ``full``, ``foveated`` ((H, W, 3) uint8),
    ``layout`` (the foveated image's :class:`generator.layout.TokenLayout`) and ``label``."""
    from PIL import Image, ImageDraw

    gap = 4
    width = len(COLUMNS) * (tile_px + gap) - gap
    height = _HEADER_PX + len(rows) * (tile_px + _HEADER_PX)
    sheet = Image.new("RGB", (width, max(height, _HEADER_PX)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, (_, title) in enumerate(COLUMNS):
        draw.text((c * (tile_px + gap) + 4, 5), title, fill=(0, 0, 0))
    for r, row in enumerate(rows):
        top = _HEADER_PX + r * (tile_px + _HEADER_PX)
        draw.text((4, top + 5), row["label"], fill=(0, 0, 0))
        for c, (key, _) in enumerate(COLUMNS):
            image = row[key]
            if key == "foveated":
                image = np.asarray(draw_layout(row["layout"], image=image, alpha=0.12))
            tile = Image.fromarray(_tile(image, tile_px))
            sheet.paste(tile, (c * (tile_px + gap), top + _HEADER_PX))
    return np.asarray(sheet)


def spectrum_figure(rows: list[dict], *, scene_factor: int, path: Path) -> str:
    """Geometric-mean radial luma power spectra of the four columns; the octaves above the
    scene's Nyquist frequency shaded. Returns the path as a string."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=100)
    colours = {"original": "k", "bicubic": "0.6", "full": "C1", "foveated": "C0"}
    for key, title in COLUMNS:
        spectra = [radial_power_spectrum(row[key]) for row in rows]
        f = spectra[0][0]
        mean = np.exp(np.mean([np.log(s + 1e-12) for _, s in spectra], axis=0))
        ax.loglog(f, mean, color=colours[key], label=title.split(",")[0])
    for i, (low, high) in enumerate(octave_bands_cpp(scene_factor)):
        ax.axvspan(low, high, color="C2", alpha=0.06 + 0.06 * (i % 2), lw=0)
    ax.axvline(0.5 / scene_factor, color="C2", ls="--", lw=1, label="scene Nyquist")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("spatial frequency (cycles/pixel)")
    ax.set_ylabel("luma power (geometric mean)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def write_sheets(*, out_dir: Path, rows: list[dict], scene_factor: int) -> dict:
    """Write ``scenes.png`` (:func:`scene_sheet`) and ``power_spectrum.png`` into ``out_dir``;
    returns their paths (``{"scenes": ..., "spectrum": ...}``)."""
    from PIL import Image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"scenes": out_dir / "scenes.png"}
    Image.fromarray(scene_sheet(rows)).save(paths["scenes"])
    if rows:
        paths["spectrum"] = Path(
            spectrum_figure(rows, scene_factor=scene_factor, path=out_dir / "power_spectrum.png")
        )
    return {k: str(v) for k, v in paths.items()}
