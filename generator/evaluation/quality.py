"""``fovea bench quality``: the default model on held-out scenes, full resolution and foveated.

Scenes: held-out photographs of the shipped pack, scene ``i`` from held-out image ``i`` (the
largest centre crop at the output's aspect ratio, resized to the output: the *original*; its
area-downsampled version: the *scene*). Photographs smaller than the output are upsampled to it,
so their originals carry no real detail in the top octaves (``original_upsampled``).

Per scene and seed, each model's full-resolution generation (the *twin*) is scored for natural
detail (:mod:`generator.evaluation.detail_metrics`: seam ratio, octave power ratio against the
original, scene PSNR; the original and the bicubic-upsampled scene beside it). Then, per gaze point
(centre, off-centre) and variant:

- ``default-foveated``: the post-trained model on acuity layouts at each strength;
- ``default-naive``: the base model (no post-training) on the same layouts;
- ``default-foveated-circle-p2`` / ``-p4``: the post-trained model on the paper's circle layout
  (r = 0.33 of the half-diagonal, periphery 1/2x or 1/4x);
- the bounds (their own records): ``oracle``, the post-trained twin reduced to each acuity layout
  (``unpack(pack(twin, layout))``: only resolution lost), and with ``ceiling=True`` the
  ``ceiling`` of :mod:`generator.evaluation.ceiling`;

each compared with the same model's twin of the same scene and seed: FovVideoVDP JOD (``pyfvvdp``,
``foveated=True``, fixation at the gaze, the display's geometry) and PSNR / SSIM inside the fovea
(pixels within ``fovea_deg`` of the gaze); generations are also scored for natural detail.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from generator.errors import FoveaError
from generator.evaluation.detail_metrics import (
    octave_bands_cpp,
    octave_power_ratio,
    psnr_db,
    scene_psnr_db,
    seam_ratio,
)
from generator.evaluation.quality_summary import NAIVE, SHIPPED, summarize
from generator.geometry import DisplayGeometry, StimulusGeometry, default_display
from generator.layout import LayoutSpec
from generator.scene import Scene

#: Variants that bound the benchmark from above (generator.evaluation.ceiling). Their records go to
#: their own file: the pinned records file holds generations only.
BOUNDS = ("oracle", "ceiling")


@dataclass
class QualitySettings:
    """What the benchmark runs. Sizes in pixels, angles in degrees.

    Attributes:
        resolution: square image side.
        scenes: held-out scenes (scene i from held-out photograph i).
        seeds: seeds to generate per scene.
        strengths: acuity strengths.
        gazes_frac: gaze points as fractions of the image width and height (x right, y down);
            the default off-centre point is ~5.7 deg right, ~3.5 deg up at 1024 px.
        fovea_deg: radius of the region scored by PSNR / SSIM.
        steps: sampler steps (None: the model's default).
        circle: include the paper's circle layouts.
        weights_dir: default-model weights folder (None: the shipped ones).
        device: torch device.
        ceiling: also score the ``ceiling`` bound (one more full-resolution generation per scene,
            seed, gaze and strength); the ``oracle`` bound is always scored.
    """

    resolution: int = 1024
    scenes: int = 8
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
    from generator.scene_sources import apply_crop, pick_crop, scene_from_original

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


def load_models(settings: QualitySettings) -> dict:
    """The shipped post-trained model and its base (the naive baseline) as generators."""
    from generator.models.default import load_default_generator

    wdir = Path(settings.weights_dir) if settings.weights_dir else None
    return {
        SHIPPED: load_default_generator(
            device=settings.device, variant="foveated", weights_dir=wdir
        ),
        NAIVE: load_default_generator(device=settings.device, variant="base", weights_dir=wdir),
    }


def _scene_factor(models: dict) -> int:
    if set(models) != {SHIPPED, NAIVE}:
        raise FoveaError(
            f"quality benchmark needs models {SHIPPED!r} and {NAIVE!r}, got {sorted(models)}"
        )
    factors = {m.scene_factor for m in models.values()}
    if not all(m.takes_scene for m in models.values()) or len(factors) != 1:
        raise FoveaError("quality benchmark needs two scene-conditioned models of one scene factor")
    return int(factors.pop())


def _jobs(settings: QualitySettings) -> list[tuple[str, float | None, LayoutSpec]]:
    """(variant, strength, layout) per gaze point: generations, then bounds."""
    jobs = [
        (name, s, LayoutSpec(mode="acuity", strength=s))
        for s in settings.strengths
        for name in (SHIPPED, NAIVE)
    ]
    if settings.circle:
        jobs += [
            (
                f"{SHIPPED}-circle-p{k}",
                None,
                LayoutSpec(mode="circle", circle_radius=0.33, periphery_factor=k),
            )
            for k in (2, 4)
        ]
    bounds = BOUNDS if settings.ceiling else ("oracle",)
    jobs += [
        (b, s, LayoutSpec(mode="acuity", strength=s)) for s in settings.strengths for b in bounds
    ]
    return jobs


def run_quality(
    settings: QualitySettings,
    *,
    models: dict | None = None,
    sheets_dir: Path | None = None,
    progress=print,
) -> dict:
    """Run the benchmark.

    Args:
        models: ``{"default-foveated": generator, "default-naive": generator}`` (scene-conditioned
            :class:`generator.pipeline.FoveatedGenerator` objects); None loads the shipped ones.
        sheets_dir: where to write the scene sheet and figures (None: none).

    Returns:
        ``{"records": [...], "bounds": [...], "full_resolution": [...], "summary": {...}}``:
        foveated generations, oracle / ceiling bounds, the full-resolution rows (one per scene,
        seed and model, plus the ``original`` and ``bicubic`` references per scene).
    """
    models = dict(models) if models is not None else load_models(settings)
    factor = _scene_factor(models)
    display = default_display()
    res = settings.resolution
    geometry = StimulusGeometry(display=display, image_width_px=res, image_height_px=res)
    token_px = models[SHIPPED].token_px
    scenes = heldout_scenes(count=settings.scenes, width_px=res, height_px=res, factor=factor)
    metric = JodMetric(display, device=settings.device)
    full = LayoutSpec(mode="full")
    records, bounds, full_rows, sheet_rows, twin_psnrs = [], [], [], [], []
    show_strength = min(settings.strengths, key=lambda s: abs(math.log(s)))  # nearest to 1
    for bench in scenes:
        scene_fields = {**bench.record(), "resolution": res, "scene_factor": factor}
        bicubic = bicubic_image(bench.scene, width_px=res, height_px=res)
        ref = {
            "original": detail_fields(
                bench.scene.original, bench, factor=factor, token_px=token_px
            ),
            "bicubic": detail_fields(bicubic, bench, factor=factor, token_px=token_px),
        }
        full_rows += [
            {"model_variant": k, "seed": None, **scene_fields, **v} for k, v in ref.items()
        ]
        ref_fields = {
            "seam_ratio_original": ref["original"]["seam_ratio"],
            "seam_ratio_bicubic": ref["bicubic"]["seam_ratio"],
            "scene_psnr_db_bicubic": ref["bicubic"]["scene_psnr_db"],
            "octave_power_ratio_bicubic": ref["bicubic"]["octave_power_ratio"],
        }
        progress(
            f"scene {bench.index} {bench.image_id}"
            + (" (original upsampled)" if bench.original_upsampled else "")
            + f": seams original {ref['original']['seam_ratio']:.3f}, bicubic "
            f"{ref['bicubic']['seam_ratio']:.3f}; bicubic power {ref['bicubic']['octave_power_ratio']}"
        )
        for seed in settings.seeds:

            def generate(name, gaze, spec, noise_grid=None, seed=seed, scene=bench.scene):
                return models[name].generate(
                    seed=seed,
                    geometry=geometry,
                    gaze_px=gaze,
                    spec=spec,
                    steps=settings.steps,
                    noise_grid=noise_grid,
                    scene=scene,
                )

            twins, twin_detail = {}, {}
            for name in (SHIPPED, NAIVE):
                twin = generate(name, None, full)
                twins[name] = twin.image
                twin_detail[name] = detail_fields(
                    twin.image, bench, factor=factor, token_px=token_px
                )
                full_rows.append(
                    {
                        "model_variant": name,
                        "seed": seed,
                        **scene_fields,
                        **twin_detail[name],
                        "seconds": twin.seconds,
                        "model": twin.sidecar["model"],
                    }
                )
                d = twin_detail[name]
                progress(
                    f"scene {bench.index} seed {seed} {name} full resolution "
                    f"({twin.seconds:.1f} s): seams {d['seam_ratio']:.3f}, scene PSNR "
                    f"{d['scene_psnr_db']:.1f} dB, power {d['octave_power_ratio']}"
                )
            twin_psnrs.append(psnr_db(twins[SHIPPED], twins[NAIVE]))
            for frac in settings.gazes_frac:
                gaze = (frac[0] * res, frac[1] * res)
                gaze_deg = tuple(round(float(v), 3) for v in geometry.image_px_to_deg(*gaze))
                mask = fovea_mask(geometry, gaze, settings.fovea_deg)
                for variant, strength, spec in _jobs(settings):
                    model_name = NAIVE if variant == NAIVE else SHIPPED
                    twin = twins[model_name]
                    if variant in BOUNDS:
                        gen = models[model_name]
                        out = _bound(
                            gen,
                            variant,
                            twin=twin,
                            layout=gen.layout(geometry=geometry, gaze_px=gaze, spec=spec),
                            seed=seed,
                            steps=settings.steps or gen.steps,
                            full_resolution=lambda noise, m=model_name: generate(
                                m, None, full, noise
                            ),
                        )
                    else:
                        out = generate(model_name, gaze, spec)
                    psnr, ssim = fovea_psnr_ssim(out.image, twin, mask)
                    jod = metric.jod(out.image, twin, gaze)
                    record = {
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
                        **scene_fields,
                        "gaze_deg": list(gaze_deg),
                        "gaze_px": list(gaze),
                        "fovea_deg": settings.fovea_deg,
                        "steps": out.sidecar["steps"],
                        "seconds": out.seconds,
                        "device": settings.device,
                        "model": out.sidecar["model"],
                        # The full-resolution twin this output is compared with:
                        **twin_detail[model_name],
                        **ref_fields,
                    }
                    if variant not in BOUNDS:
                        own = detail_fields(out.image, bench, factor=factor, token_px=token_px)
                        record.update({f"{k}_foveated": v for k, v in own.items()})
                    (bounds if variant in BOUNDS else records).append(record)
                    progress(
                        f"scene {bench.index} seed {seed} gaze {gaze_deg} {variant} s={strength}: "
                        f"JOD {jod:.2f}, fovea PSNR {psnr:.1f} dB, SSIM {ssim:.3f}, ratio "
                        f"{out.layout.token_ratio:.3f}"
                        + (
                            f", seams {record['seam_ratio_foveated']:.3f}"
                            if "seam_ratio_foveated" in record
                            else ""
                        )
                    )
                    if (
                        variant == SHIPPED
                        and strength == show_strength
                        and seed == settings.seeds[0]
                        and frac == settings.gazes_frac[-1]
                    ):
                        sheet_rows.append(
                            {
                                "original": bench.scene.original,
                                "bicubic": bicubic,
                                "full": twins[SHIPPED],
                                "foveated": out.image,
                                "layout": out.layout,
                                "label": f"{bench.index}: {bench.image_id}"
                                + (" (original upsampled)" if bench.original_upsampled else "")
                                + f"; seed {seed}; foveated s={strength:g} at gaze {gaze_deg} "
                                f"deg, token ratio {out.layout.token_ratio:.3f}",
                            }
                        )
    summary = summarize(
        records + bounds,
        full_rows,
        resolution=res,
        seeds=settings.seeds,
        strengths=settings.strengths,
    )
    summary.update(
        {
            "scenes": [b.record() for b in scenes],
            "scene_factor": factor,
            "octave_bands_cpp": [list(b) for b in octave_bands_cpp(factor)],
            "strengths": list(settings.strengths),
            "gazes_frac": [list(g) for g in settings.gazes_frac],
            "steps": settings.steps,
            "full_resolution_psnr_db_foveated_vs_base": twin_psnrs,
        }
    )
    upsampled = [b.image_id for b in scenes if b.original_upsampled]
    if upsampled:
        summary["note"] = (
            f"held-out photographs smaller than {res} px were upsampled to make the original "
            f"({', '.join(upsampled)}): no real detail in their top octaves; "
            "full_resolution.*.octave_power_ratio_median_native leaves them out"
        )
    if sheets_dir is not None:
        from generator.evaluation.quality_plot import plot_quality
        from generator.evaluation.sheets import write_sheets

        summary["sheets"] = write_sheets(
            out_dir=Path(sheets_dir), rows=sheet_rows, scene_factor=factor
        )
        summary["sheets"]["jod_curve"] = plot_quality(
            [summary], Path(sheets_dir) / "jod_vs_token_ratio.png"
        )
    return {"records": records, "bounds": bounds, "full_resolution": full_rows, "summary": summary}


def _bound(gen, variant, *, twin, layout, seed, steps, full_resolution):
    """An ``oracle`` or ``ceiling`` image for one layout, shaped like a Generation for scoring.

    ``full_resolution(noise_grid)`` generates the full-resolution image of other noise."""
    from types import SimpleNamespace

    from generator.evaluation.ceiling import reduce_to_layout, resample_within_blocks

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
