"""The quality benchmark's comparison metrics of an output against its full-resolution twin:
FovVideoVDP JOD at the gaze, and PSNR / SSIM inside the fovea."""

from __future__ import annotations

import math

import numpy as np

from generator.geometry import DisplayGeometry, StimulusGeometry


def fovea_mask(geometry: StimulusGeometry, gaze_px, radius_deg: float) -> np.ndarray:
    """(H, W) bool: image pixels (centres) within ``radius_deg`` of the gaze."""
    ys, xs = np.mgrid[0 : geometry.image_height_px, 0 : geometry.image_width_px] + 0.5
    return geometry.eccentricity_deg(xs, ys, gaze_px) <= radius_deg


def fovea_psnr_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """PSNR (dB, 8-bit range) and mean SSIM over ``mask`` between two (H, W, 3) uint8 images."""
    from skimage.metrics import structural_similarity

    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean(diff[mask] ** 2))
    psnr = float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)
    _, ssim_map = structural_similarity(a, b, channel_axis=2, data_range=255, full=True)
    return psnr, float(ssim_map.mean(axis=2)[mask].mean())


class JodMetric:
    """FovVideoVDP (foveated) on an image shown at native resolution on ``display``.

    Attributes:
        metric: the ``pyfvvdp.fvvdp`` instance.
        pixels_per_degree: the display's pixels per degree as FovVideoVDP computes them.
    """

    def __init__(self, display: DisplayGeometry, *, device: str = "cpu"):
        import pyfvvdp
        import torch
        from pyfvvdp.fvvdp_display_model import fvvdp_display_geometry

        diagonal_in = math.hypot(display.width_cm, display.height_cm) / 2.54
        geometry = fvvdp_display_geometry(
            (display.width_px, display.height_px),
            distance_m=display.distance_cm / 100.0,
            diagonal_size_inches=diagonal_in,
        )
        self.metric = pyfvvdp.fvvdp(
            display_name="standard_4k",  # photometry: 200 cd/m2 SDR panel; geometry is ours
            display_geometry=geometry,
            foveated=True,
            heatmap=None,
            quiet=True,
            device=torch.device(device),
        )
        self.torch = torch
        self.pixels_per_degree = float(geometry.get_ppd())

    def jod(self, test: np.ndarray, reference: np.ndarray, gaze_px) -> float:
        """JOD (10 = no visible difference) of (H, W, 3) ``test`` against ``reference`` with the
        gaze at ``gaze_px`` (image px, x then y)."""
        fixation = self.torch.tensor([float(gaze_px[0]), float(gaze_px[1])])
        with self.torch.no_grad():
            q, _ = self.metric.predict(test, reference, dim_order="HWC", fixation_point=fixation)
        return float(q)
