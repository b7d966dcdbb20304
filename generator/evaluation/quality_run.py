"""One run of ``fovea bench quality`` (``generator.evaluation.quality.run_quality``): the jobs per
gaze point, each output scored against its model's full-resolution twin, the rows collected."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from generator.errors import FoveaError
from generator.evaluation.detail_metrics import octave_bands_cpp, psnr_db
from generator.evaluation.quality_metrics import JodMetric, fovea_mask, fovea_psnr_ssim
from generator.evaluation.quality_scenes import (
    BenchScene,
    bicubic_image,
    detail_fields,
    heldout_scenes,
)
from generator.evaluation.quality_summary import NAIVE, SHIPPED, summarize
from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec

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


def scene_factor(models: dict) -> int:
    if set(models) != {SHIPPED, NAIVE}:
        raise FoveaError(
            f"quality benchmark needs models {SHIPPED!r} and {NAIVE!r}, got {sorted(models)}"
        )
    factors = {m.scene_factor for m in models.values()}
    if not all(m.takes_scene for m in models.values()) or len(factors) != 1:
        raise FoveaError("quality benchmark needs two scene-conditioned models of one scene factor")
    return int(factors.pop())


def quality_jobs(settings: QualitySettings) -> list[tuple[str, float | None, LayoutSpec]]:
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


@dataclass
class SceneReferences:
    """One scene's fixed parts: its record fields, the bicubic image and the references' detail."""

    bench: BenchScene
    fields: dict
    bicubic: object  # (H, W, 3) uint8
    detail: dict  # seam / scene-PSNR / octave-power fields of the original and the bicubic image


class QualityRun:
    """One benchmark run: the fixed context (models, geometry, metric, scenes) and the rows
    it accumulates (``records``, ``bounds``, ``full_rows``, ``sheet_rows``, ``twin_psnrs``)."""

    def __init__(self, settings: QualitySettings, models: dict, *, progress=print):
        self.settings, self.models, self.progress = settings, models, progress
        self.factor = scene_factor(models)
        display = default_display()
        res = self.resolution = settings.resolution
        self.geometry = StimulusGeometry(display=display, image_width_px=res, image_height_px=res)
        self.token_px = models[SHIPPED].token_px
        self.scenes = heldout_scenes(
            count=settings.scenes, width_px=res, height_px=res, factor=self.factor
        )
        self.metric = JodMetric(display, device=settings.device)
        self.full = LayoutSpec(mode="full")
        self.records, self.bounds, self.full_rows, self.sheet_rows = [], [], [], []
        self.twin_psnrs: list[float] = []
        self.show_strength = min(settings.strengths, key=lambda s: abs(math.log(s)))  # nearest 1

    def detail(self, image, bench: BenchScene) -> dict:
        return detail_fields(image, bench, factor=self.factor, token_px=self.token_px)

    def generate(self, name, seed, scene, gaze, spec, noise_grid=None):
        return self.models[name].generate(
            seed=seed,
            geometry=self.geometry,
            gaze_px=gaze,
            spec=spec,
            steps=self.settings.steps,
            noise_grid=noise_grid,
            scene=scene,
        )

    def score_references(self, bench: BenchScene) -> SceneReferences:
        """The original's and the bicubic upsampling's natural detail (two full-resolution rows)."""
        res = self.resolution
        scene_fields = {**bench.record(), "resolution": res, "scene_factor": self.factor}
        bicubic = bicubic_image(bench.scene, width_px=res, height_px=res)
        ref = {"original": self.detail(bench.scene.original, bench)}
        ref["bicubic"] = self.detail(bicubic, bench)
        self.full_rows += [
            {"model_variant": k, "seed": None, **scene_fields, **v} for k, v in ref.items()
        ]
        self.progress(
            f"scene {bench.index} {bench.image_id}"
            + (" (original upsampled)" if bench.original_upsampled else "")
            + f": seams original {ref['original']['seam_ratio']:.3f}, bicubic "
            f"{ref['bicubic']['seam_ratio']:.3f}; bicubic power {ref['bicubic']['octave_power_ratio']}"
        )
        detail = {
            "seam_ratio_original": ref["original"]["seam_ratio"],
            "seam_ratio_bicubic": ref["bicubic"]["seam_ratio"],
            "scene_psnr_db_bicubic": ref["bicubic"]["scene_psnr_db"],
            "octave_power_ratio_bicubic": ref["bicubic"]["octave_power_ratio"],
        }
        return SceneReferences(bench, scene_fields, bicubic, detail)

    def score_twins(self, refs: SceneReferences, seed: int) -> tuple[dict, dict]:
        """Each model's full-resolution twin: model -> image, model -> its detail fields."""
        bench = refs.bench
        twins, twin_detail = {}, {}
        for name in (SHIPPED, NAIVE):
            twin = self.generate(name, seed, bench.scene, None, self.full)
            twins[name] = twin.image
            d = twin_detail[name] = self.detail(twin.image, bench)
            self.full_rows.append(
                {
                    "model_variant": name,
                    "seed": seed,
                    **refs.fields,
                    **d,
                    "seconds": twin.seconds,
                    "model": twin.sidecar["model"],
                }
            )
            self.progress(
                f"scene {bench.index} seed {seed} {name} full resolution "
                f"({twin.seconds:.1f} s): seams {d['seam_ratio']:.3f}, scene PSNR "
                f"{d['scene_psnr_db']:.1f} dB, power {d['octave_power_ratio']}"
            )
        self.twin_psnrs.append(psnr_db(twins[SHIPPED], twins[NAIVE]))
        return twins, twin_detail

    def score_seed(self, refs: SceneReferences, seed: int) -> None:
        """The twins, then every variant at every gaze point against its model's twin."""
        twins, twin_detail = self.score_twins(refs, seed)
        res = self.resolution
        for frac in self.settings.gazes_frac:
            gaze = (frac[0] * res, frac[1] * res)
            mask = fovea_mask(self.geometry, gaze, self.settings.fovea_deg)
            for variant, strength, spec in quality_jobs(self.settings):
                model_name = NAIVE if variant == NAIVE else SHIPPED
                twin = twins[model_name]
                out = self.output(refs, seed, gaze, variant, spec, model_name, twin)
                record = self.record(refs, seed, gaze, (variant, strength, spec), out, twin, mask)
                record.update(twin_detail[model_name])  # the twin this output is compared with
                record.update(refs.detail)
                if variant not in BOUNDS:
                    own = self.detail(out.image, refs.bench)
                    record.update({f"{k}_foveated": v for k, v in own.items()})
                (self.bounds if variant in BOUNDS else self.records).append(record)
                self._report(refs, record, out)
                if (
                    variant == SHIPPED
                    and strength == self.show_strength
                    and seed == self.settings.seeds[0]
                    and frac == self.settings.gazes_frac[-1]
                ):
                    self.sheet_rows.append(self._sheet_row(refs, twins[SHIPPED], out, record))

    def output(self, refs, seed, gaze, variant, spec, model_name, twin):
        """A foveated generation, or the bound image of ``variant`` (oracle / ceiling)."""
        if variant not in BOUNDS:
            return self.generate(model_name, seed, refs.bench.scene, gaze, spec)
        gen = self.models[model_name]
        return bound_image(
            gen,
            variant,
            twin=twin,
            layout=gen.layout(geometry=self.geometry, gaze_px=gaze, spec=spec),
            seed=seed,
            steps=self.settings.steps or gen.steps,
            full_resolution=lambda noise: self.generate(
                model_name, seed, refs.bench.scene, None, self.full, noise
            ),
        )

    def record(self, refs, seed, gaze, job, out, twin, mask) -> dict:
        """The pinned record fields of one output, its layout, scene, gaze and timing."""
        variant, strength, spec = job
        psnr, ssim = fovea_psnr_ssim(out.image, twin, mask)
        gaze_deg = tuple(round(float(v), 3) for v in self.geometry.image_px_to_deg(*gaze))
        circle = spec.mode == "circle"
        return {
            "strength": strength,
            "model_variant": variant,
            "jod": self.metric.jod(out.image, twin, gaze),
            "fovea_psnr_db": psnr,
            "fovea_ssim": ssim,
            "token_ratio": out.layout.token_ratio,
            "tokens": out.tokens,
            "tokens_full": out.tokens_full,
            "layout_mode": spec.mode,
            "circle_radius": spec.circle_radius if circle else None,
            "periphery_factor": spec.periphery_factor if circle else None,
            "seed": seed,
            **refs.fields,
            "gaze_deg": list(gaze_deg),
            "gaze_px": list(gaze),
            "fovea_deg": self.settings.fovea_deg,
            "steps": out.sidecar["steps"],
            "seconds": out.seconds,
            "device": self.settings.device,
            "model": out.sidecar["model"],
        }

    def _report(self, refs: SceneReferences, record: dict, out) -> None:
        self.progress(
            f"scene {refs.bench.index} seed {record['seed']} gaze {tuple(record['gaze_deg'])} "
            f"{record['model_variant']} s={record['strength']}: "
            f"JOD {record['jod']:.2f}, fovea PSNR {record['fovea_psnr_db']:.1f} dB, "
            f"SSIM {record['fovea_ssim']:.3f}, ratio {out.layout.token_ratio:.3f}"
            + (
                f", seams {record['seam_ratio_foveated']:.3f}"
                if "seam_ratio_foveated" in record
                else ""
            )
        )

    @staticmethod
    def _sheet_row(refs: SceneReferences, full, out, record: dict) -> dict:
        bench = refs.bench
        return {
            "original": bench.scene.original,
            "bicubic": refs.bicubic,
            "full": full,
            "foveated": out.image,
            "layout": out.layout,
            "label": f"{bench.index}: {bench.image_id}"
            + (" (original upsampled)" if bench.original_upsampled else "")
            + f"; seed {record['seed']}; foveated s={record['strength']:g} at gaze "
            f"{tuple(record['gaze_deg'])} deg, token ratio {out.layout.token_ratio:.3f}",
        }

    def summary(self) -> dict:
        """The summary of every row (targets, medians) plus the run's settings and scenes."""
        settings, res = self.settings, self.resolution
        summary = summarize(
            self.records + self.bounds,
            self.full_rows,
            resolution=res,
            seeds=settings.seeds,
            strengths=settings.strengths,
        )
        summary.update(
            {
                "scenes": [b.record() for b in self.scenes],
                "scene_factor": self.factor,
                "octave_bands_cpp": [list(b) for b in octave_bands_cpp(self.factor)],
                "strengths": list(settings.strengths),
                "gazes_frac": [list(g) for g in settings.gazes_frac],
                "steps": settings.steps,
                "full_resolution_psnr_db_foveated_vs_base": self.twin_psnrs,
            }
        )
        upsampled = [b.image_id for b in self.scenes if b.original_upsampled]
        if upsampled:
            summary["note"] = (
                f"held-out photographs smaller than {res} px were upsampled to make the original "
                f"({', '.join(upsampled)}): no real detail in their top octaves; "
                "full_resolution.*.octave_power_ratio_median_native leaves them out"
            )
        return summary


def bound_image(gen, variant, *, twin, layout, seed, steps, full_resolution):
    """An ``oracle`` or ``ceiling`` image for one layout, shaped like a Generation for scoring.

    ``full_resolution(noise_grid)`` generates the full-resolution image of other noise."""
    from types import SimpleNamespace

    from generator.evaluation.ceiling import reduce_to_layout, resample_within_blocks

    start = time.perf_counter()
    cells_per_token = gen.codec.cells_per_token  # data cells per token side
    source = twin
    if variant == "ceiling":
        resampled = resample_within_blocks(
            gen.noise_grid(layout, seed=seed),
            layout,
            cells_per_token=cells_per_token,
            seed=1_000_003 * (seed + 1) + int(layout.num_tokens),
        )
        source = full_resolution(resampled).image
    return SimpleNamespace(
        image=reduce_to_layout(source, layout, cells_per_token=cells_per_token),
        layout=layout,
        tokens=layout.num_tokens,
        tokens_full=layout.num_tokens_full,
        seconds=time.perf_counter() - start,
        sidecar={"steps": steps, "model": f"{gen.model_id}-{variant}"},
    )
