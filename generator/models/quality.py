"""``fovea bench quality``: foveated vs full-resolution generations of the same seed, scored.

For each seed and gaze point (centre, off-centre) and each variant:

- ``default-foveated``: the post-trained model on acuity layouts at each strength;
- ``default-naive``: the base model (no post-training) on the same layouts;
- ``default-foveated-circle-p2`` / ``-p4``: the post-trained model on the paper's circle layout
  (r = 0.33 of the half-diagonal, periphery 1/2x or 1/4x);

and, with ``ceiling=True``, the bounds of :mod:`generator.models.ceiling` on the same acuity
layouts (``oracle``: the reference reduced to the layout; ``ceiling``: the best any foveated
generator of this model can do); each compared with the same model's full-resolution generation
of the same seed and class:
FovVideoVDP JOD (``pyfvvdp``, ``foveated=True``, fixation at the gaze, the display's geometry),
and PSNR / SSIM inside the fovea (pixels within ``fovea_deg`` of the gaze).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from generator.geometry import DisplayGeometry, StimulusGeometry, default_display
from generator.layout import LayoutSpec

#: Variants that bound the benchmark from above (generator.models.ceiling). Their records go to
#: their own file: the pinned records file holds generations only.
BOUNDS = ("oracle", "ceiling")


@dataclass
class QualitySettings:
    """What the benchmark runs. Sizes in pixels, angles in degrees.

    Attributes:
        resolution: square image side.
        seeds: seeds to generate (class = seed modulo the number of classes).
        strengths: acuity strengths.
        gazes_frac: gaze points as fractions of the image width and height (x right, y down);
            the default off-centre point is ~5.7 deg right, ~3.5 deg up at 1024 px.
        fovea_deg: radius of the region scored by PSNR / SSIM.
        steps: sampler steps (None: the model's default).
        circle: include the paper's circle layouts.
        weights_dir: default-model weights folder (None: the shipped ones).
        device: torch device.
        ceiling: also score the ``oracle`` and ``ceiling`` bounds (one more full-resolution
            generation per seed, gaze and strength).
    """

    resolution: int = 1024
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    strengths: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0, 2.0])
    gazes_frac: list[tuple[float, float]] = field(
        default_factory=lambda: [(0.5, 0.5), (0.75, 0.35)]
    )
    fovea_deg: float = 2.0
    steps: int | None = None
    circle: bool = True
    weights_dir: str | None = None
    device: str = "cpu"
    ceiling: bool = False


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
    """FovVideoVDP on an image shown centred at native resolution on ``display``."""

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
            display_name="standard_4k",
            display_geometry=geometry,
            foveated=True,
            heatmap=None,
            quiet=True,
            device=torch.device(device),
        )
        self.torch = torch

    def jod(self, test: np.ndarray, reference: np.ndarray, gaze_px) -> float:
        fixation = self.torch.tensor([float(gaze_px[0]), float(gaze_px[1])])
        with self.torch.no_grad():
            q, _ = self.metric.predict(test, reference, dim_order="HWC", fixation_point=fixation)
        return float(q)


def run_quality(
    settings: QualitySettings, *, sheets_dir: Path | None = None, progress=print
) -> dict:
    """Run the benchmark; returns ``{"records": [...], "summary": {...}}``."""
    from generator.models.default import load_default_generator

    display = default_display()
    res = settings.resolution
    geometry = StimulusGeometry(display=display, image_width_px=res, image_height_px=res)
    wdir = Path(settings.weights_dir) if settings.weights_dir else None
    models = {
        "default-foveated": load_default_generator(
            device=settings.device, variant="foveated", weights_dir=wdir
        ),
        "default-naive": load_default_generator(
            device=settings.device, variant="base", weights_dir=wdir
        ),
    }
    n_classes = len(models["default-foveated"].encoder.config.classes)
    metric = JodMetric(display, device=settings.device)
    full = LayoutSpec(mode="full")
    records, bounds, shown = [], [], []  # bounds: the oracle / ceiling records (own file)
    show_strength = min(settings.strengths, key=lambda s: abs(math.log(s)))  # nearest to 1
    twins: dict[tuple[str, int], np.ndarray] = {}
    for seed in settings.seeds:
        cond = seed % n_classes

        def generate(model_name, gaze, spec, noise_grid=None, seed=seed, cond=cond):
            return models[model_name].generate(
                seed=seed,
                geometry=geometry,
                gaze_px=gaze,
                spec=spec,
                condition=cond,
                steps=settings.steps,
                noise_grid=noise_grid,
            )

        for name in models:
            start = time.perf_counter()
            twins[(name, seed)] = generate(name, None, full).image
            progress(f"seed {seed} {name} full-resolution: {time.perf_counter() - start:.1f} s")
        for frac in settings.gazes_frac:
            gaze = (frac[0] * res, frac[1] * res)
            gaze_deg = tuple(round(float(v), 3) for v in geometry.image_px_to_deg(*gaze))
            mask = fovea_mask(geometry, gaze, settings.fovea_deg)
            jobs = [
                (name, s, LayoutSpec(mode="acuity", strength=s))
                for s in settings.strengths
                for name in models
            ]
            if settings.circle:
                jobs += [
                    (
                        f"default-foveated-circle-p{k}",
                        None,
                        LayoutSpec(mode="circle", circle_radius=0.33, periphery_factor=k),
                    )
                    for k in (2, 4)
                ]
            if settings.ceiling:
                jobs += [
                    (b, s, LayoutSpec(mode="acuity", strength=s))
                    for s in settings.strengths
                    for b in BOUNDS
                ]
            for variant, strength, spec in jobs:
                model_name = "default-naive" if variant == "default-naive" else "default-foveated"
                twin = twins[(model_name, seed)]
                if variant in BOUNDS:
                    out = _bound(
                        models[model_name],
                        variant,
                        twin=twin,
                        layout=models[model_name].layout(
                            geometry=geometry, gaze_px=gaze, spec=spec
                        ),
                        seed=seed,
                        steps=settings.steps or models[model_name].steps,
                        full_resolution=lambda noise, m=model_name: generate(m, None, full, noise),
                    )
                else:
                    out = generate(model_name, gaze, spec)
                psnr, ssim = fovea_psnr_ssim(out.image, twin, mask)
                jod = metric.jod(out.image, twin, gaze)
                (bounds if variant in BOUNDS else records).append(
                    {
                        "strength": strength,
                        "model_variant": variant,
                        "jod": jod,
                        "fovea_psnr_db": psnr,
                        "fovea_ssim": ssim,
                        "token_ratio": out.layout.token_ratio,
                        "tokens": out.tokens,
                        "tokens_full": out.tokens_full,
                        "layout_mode": spec.mode,
                        "circle_radius": spec.circle_radius if spec.mode == "circle" else None,
                        "periphery_factor": spec.periphery_factor
                        if spec.mode == "circle"
                        else None,
                        "seed": seed,
                        "condition": cond,
                        "gaze_deg": list(gaze_deg),
                        "gaze_px": list(gaze),
                        "resolution": res,
                        "fovea_deg": settings.fovea_deg,
                        "steps": out.sidecar["steps"],
                        "seconds": out.seconds,
                        "device": settings.device,
                        "model": out.sidecar["model"],
                    }
                )
                progress(
                    f"seed {seed} gaze {gaze_deg} {variant} s={strength}: JOD {jod:.2f}, "
                    f"fovea PSNR {psnr:.1f} dB, SSIM {ssim:.3f}, ratio {out.layout.token_ratio:.3f}"
                )
                if variant == "default-foveated" and strength == show_strength:
                    shown.append((out.image, gaze, seed))
    summary = summarize(records + bounds, settings)
    summary["full_resolution_psnr_db_foveated_vs_base"] = [
        fovea_psnr_ssim(
            twins[("default-foveated", s)],
            twins[("default-naive", s)],
            np.ones((res, res), dtype=bool),
        )[0]
        for s in settings.seeds
    ]
    if sheets_dir is not None:
        from generator.models.sheets import write_sheets

        summary["sheets"] = write_sheets(
            out_dir=Path(sheets_dir),
            full=[twins[("default-foveated", s)] for s in settings.seeds],
            foveated=shown,
            resolution=res,
        )
        from generator.models.quality_plot import plot_quality

        summary["sheets"]["jod_curve"] = plot_quality(
            [summary], Path(sheets_dir) / "jod_vs_token_ratio.png"
        )
    return {"records": records, "bounds": bounds, "summary": summary}


def _bound(gen, variant, *, twin, layout, seed, steps, full_resolution):
    """An ``oracle`` or ``ceiling`` image for one layout, shaped like a Generation for scoring.

    ``full_resolution(noise_grid)`` generates the full-resolution image of other noise."""
    from types import SimpleNamespace

    from generator.models.ceiling import reduce_to_layout, resample_within_blocks

    start = time.perf_counter()
    p = gen.codec.cells_per_token
    source = twin
    if variant == "ceiling":
        resampled = resample_within_blocks(
            gen.noise_grid(layout, seed=seed),
            layout,
            cells_per_token=p,
            seed=1_000_003 * (seed + 1) + int(layout.num_tokens),
        )
        source = full_resolution(resampled).image
    return SimpleNamespace(
        image=reduce_to_layout(source, layout, cells_per_token=p),
        layout=layout,
        tokens=layout.num_tokens,
        tokens_full=layout.num_tokens_full,
        seconds=time.perf_counter() - start,
        sidecar={"steps": steps, "model": f"{gen.model_id}-{variant}"},
    )


def _crossing(points: list[tuple[float, float, float]]) -> dict | None:
    """Where a (strength, median JOD, token ratio) curve first falls below 9.5."""
    pts = sorted(points)
    for (s0, j0, r0), (s1, j1, r1) in zip(pts, pts[1:], strict=False):
        if j0 >= 9.5 > j1:
            f = (j0 - 9.5) / (j0 - j1)
            return {"strength": s0 + f * (s1 - s0), "token_ratio": r0 + f * (r1 - r0)}
    if not pts:
        return None
    if pts[-1][1] >= 9.5:
        return {"strength": f">{pts[-1][0]}", "token_ratio": f"<{pts[-1][2]:.3f}"}
    return {"strength": f"<{pts[0][0]}", "token_ratio": None}


def summarize(records: list[dict], settings: QualitySettings) -> dict:
    """Median JOD / PSNR per variant and strength; where the post-trained curve crosses 9.5."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for variant in sorted({r["model_variant"] for r in records}):
        rows = [r for r in records if r["model_variant"] == variant]
        keys = sorted({r["strength"] for r in rows}, key=lambda s: -1 if s is None else s)
        table[variant] = {}
        for s in keys:
            sel = [r for r in rows if r["strength"] == s]
            table[variant][str(s)] = {
                "jod_median": statistics.median(r["jod"] for r in sel),
                "fovea_psnr_db_median": statistics.median(r["fovea_psnr_db"] for r in sel),
                "fovea_ssim_median": statistics.median(r["fovea_ssim"] for r in sel),
                "token_ratio_median": statistics.median(r["token_ratio"] for r in sel),
                "n": len(sel),
            }
    crossings = {
        variant: _crossing(
            [
                (float(s), v["jod_median"], v["token_ratio_median"])
                for s, v in rows.items()
                if s != "None"
            ]
        )
        for variant, rows in table.items()
        if variant in ("default-foveated", "default-naive", "oracle", "ceiling")
    }
    post = table.get("default-foveated", {})
    naive = table.get("default-naive", {})
    beats = {s: post[s]["jod_median"] > naive[s]["jod_median"] for s in post if s in naive}
    return {
        "medians": table,
        "jod_9_5_crossing": crossings.get("default-foveated"),
        "jod_9_5_crossing_by_variant": crossings,
        "post_training_beats_naive": beats,
        "resolution": settings.resolution,
        "seeds": settings.seeds,
    }
