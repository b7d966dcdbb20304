"""Does a generation from a scene look like a photograph? Three numbers and a spectrum.

- :func:`seam_ratio`: mean absolute luminance gradient across token borders (between pixels
  ``16k - 1`` and ``16k``, rows and columns) over the same at mid-token offsets (between
  ``16k + 7`` and ``16k + 8``). About 1.0 for photographs and smooth resampling; above 1 when
  tokens show as tiles.
- :func:`octave_power_ratio`: radially averaged power spectrum of the luminance (Hann-windowed),
  generated over original, per octave above the scene's Nyquist frequency (scene factor 4: the
  octaves [1/8, 1/4] and [1/4, 1/2] cycles/px of the output). 1 is real detail at the right
  strength; bicubic upsampling of the scene falls far below.
- :func:`scene_psnr_db`: the generation area-downsampled to the scene's size against the scene
  (faithful to the composition).

Images are (H, W, 3) uint8 arrays; luminance is Rec. 709 luma of the 8-bit values.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from generator.codecs import to_uint8_image
from generator.errors import FoveaError
from generator.scene import downsample_to_scene

_LUMA = np.array([0.2126, 0.7152, 0.0722])


def luma(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) float64 Rec. 709 luma in 0..255."""
    return image.astype(np.float64) @ _LUMA


def seam_ratio(image: np.ndarray, *, token_px: int = 16) -> float:
    """Mean |luma gradient| across token borders over the same at mid-token offsets (both axes).

    Args:
        image: (H, W, 3) uint8, at least ``token_px + 1`` pixels on each side.
        token_px: token side in pixels (borders every ``token_px`` pixels from the top-left).

    Returns:
        The ratio (``inf`` when the image is flat inside tokens but not across borders, ``nan``
        when it is flat everywhere).
    """
    y = luma(image)
    h, w = y.shape
    if min(h, w) <= token_px:
        raise FoveaError(
            f"seam ratio needs images larger than one {token_px} px token, got {w}x{h}"
        )
    dx, dy = np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0))
    half = token_px // 2

    def mean_at(first: int) -> float:
        # Gradient index j lies between pixels j and j + 1.
        cols = np.arange(first, w - 1, token_px)
        rows = np.arange(first, h - 1, token_px)
        return float(np.concatenate([dx[:, cols].ravel(), dy[rows, :].ravel()]).mean())

    border, mid = mean_at(token_px - 1), mean_at(half - 1)
    if mid == 0:
        return float("nan") if border == 0 else float("inf")
    return border / mid


def octave_bands_cpp(scene_factor: int) -> list[tuple[float, float]]:
    """Octaves of the output's spatial frequency (cycles/px) from the scene's Nyquist frequency
    (``0.5 / scene_factor``) up to the output's (0.5); the last may be shorter than an octave."""
    if scene_factor < 2:
        raise FoveaError(
            f"scene factor must be >= 2 for octaves above its Nyquist, got {scene_factor}"
        )
    bands, low = [], 0.5 / scene_factor
    while low < 0.5 - 1e-12:
        bands.append((low, min(2 * low, 0.5)))
        low *= 2
    return bands


def band_label(band: tuple[float, float]) -> str:
    """``(0.125, 0.25)`` -> ``"0.125-0.25"`` (cycles/px), the key of a band in records."""
    return f"{band[0]:g}-{band[1]:g}"


def _power(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hann-windowed luma power spectrum and each coefficient's radial frequency (cycles/px)."""
    y = luma(image)
    h, w = y.shape
    y = (y - y.mean()) * np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.fft2(y)) ** 2
    r = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    return power, r


def band_power(image: np.ndarray, bands: list[tuple[float, float]]) -> np.ndarray:
    """Mean luma power in each radial band [low, high) (the last band includes 0.5)."""
    power, r = _power(image)
    out = []
    for low, high in bands:
        inside = (r >= low) & ((r < high) | ((high >= 0.5) & (r <= high)))
        out.append(float(power[inside].mean()) if inside.any() else float("nan"))
    return np.asarray(out)


def octave_power_ratio(
    generated: np.ndarray, original: np.ndarray, *, scene_factor: int
) -> dict[str, float]:
    """Luma power of ``generated`` over ``original`` (same size) per octave above the scene's
    Nyquist frequency; keys from :func:`band_label` (cycles/px), in increasing frequency."""
    if generated.shape != original.shape:
        raise FoveaError(
            f"power ratio of images of different sizes: {generated.shape} vs {original.shape}"
        )
    bands = octave_bands_cpp(scene_factor)
    ratio = band_power(generated, bands) / band_power(original, bands)
    return {band_label(b): float(v) for b, v in zip(bands, ratio, strict=True)}


def radial_power_spectrum(image: np.ndarray, bins: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged luma power spectrum of an (H, W, 3) uint8 image (Hann window).

    Returns:
        (bins,) frequencies in cycles/pixel (bin centres, 1/min(H, W) .. 0.5) and (bins,) mean power.
    """
    power, r = _power(image)
    h, w = power.shape
    edges = np.linspace(1.0 / min(h, w), 0.5, bins + 1)
    idx = np.digitize(r.ravel(), edges) - 1
    ok = (idx >= 0) & (idx < bins)
    sums = np.bincount(idx[ok], weights=power.ravel()[ok], minlength=bins)
    counts = np.maximum(np.bincount(idx[ok], minlength=bins), 1)
    return (edges[:-1] + edges[1:]) / 2, sums / counts


def to_scene_size(image: np.ndarray, *, scene_factor: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (H/f, W/f, 3) uint8 by the scene's own rule (area mean, 8-bit)."""
    h, w = image.shape[:2]
    if h % scene_factor or w % scene_factor:
        raise FoveaError(f"a {w}x{h} px image does not reduce by the scene factor {scene_factor}")
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].double() / 127.5 - 1
    return to_uint8_image(downsample_to_scene(x, scene_factor))


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB, 8-bit range) between two uint8 images of the same shape (``inf`` if equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def scene_psnr_db(generated: np.ndarray, scene: np.ndarray) -> float:
    """PSNR (dB) of ``generated`` (H, W, 3) area-downsampled to the scene's size against
    ``scene`` (H/f, W/f, 3), both uint8; f is taken from the sizes."""
    h, w = generated.shape[:2]
    sh, sw = scene.shape[:2]
    if h % sh or w % sw or h // sh != w // sw:
        raise FoveaError(f"a {sw}x{sh} px scene is not a whole-factor reduction of {w}x{h} px")
    return psnr_db(to_scene_size(generated, scene_factor=h // sh), scene)
