"""How well a foveated LoRA (the Foveated Diffusion release's) serves the kit's acuity layouts.

The release trains its LoRAs on circle masks with two token levels. This benchmark measures what
the paper does not report: the same LoRA on the kit's multi-level acuity layouts (levels up to 8,
the release's ids and its cross-resolution attention extended level by level,
:mod:`generator.crpa`), beside its own circle layouts, and beside the base model without the LoRA
on the same layouts and token rules (the naive baseline: the only difference is the LoRA).

For every prompt x seed x gaze and every layout, each variant's foveated image is scored against
that variant's own full-resolution twin (same prompt and seed): FovVideoVDP JOD at the gaze
(10 = no visible difference) and PSNR / SSIM within ``fovea_deg`` of it
(:mod:`generator.evaluation.quality_metrics`, the same metrics as ``fovea bench quality``).

    fovea bench lora --model DIR --lora FILE --json OUT.json [--prompts P ...] [--device cuda]

Real weights are the lab's (FLUX.2 [klein] base 4B and the release's ``fov_*`` files); the tests
run it on a tiny random FLUX.2 directory with a synthetic LoRA in the release's format, where the
numbers mean nothing but every stage runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec

LORA, BASE = "lora", "base"
DEFAULT_PROMPTS = (
    "a forest path in autumn, late afternoon light",
    "a busy city street at dusk, shop windows lit",
    "a close-up of a tabby cat on a wooden floor",
    "a rocky coastline with waves under a cloudy sky",
)


@dataclass
class LoraQualitySettings:
    """What the benchmark runs. Sizes in pixels, angles in degrees.

    Attributes:
        model: a FLUX.2 [klein] pipeline directory.
        lora: the release's LoRA file (merged into a second copy of the model).
        prompts: prompts to generate.
        seeds: seeds per prompt.
        strengths: acuity strengths.
        circle_factors: periphery factors of the release's circle layouts (radius 0.33).
        gazes_frac: gaze points as fractions of the image width and height (x right, y down).
        resolution: square image side.
        fovea_deg: radius of the region scored by PSNR / SSIM.
        steps: sampler steps (None: the model's default).
        device, dtype: where and how the models run.
    """

    model: str
    lora: str
    prompts: list[str] = field(default_factory=lambda: list(DEFAULT_PROMPTS))
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    strengths: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0, 2.0])
    circle_factors: list[int] = field(default_factory=lambda: [2, 4])
    gazes_frac: list[tuple[float, float]] = field(
        default_factory=lambda: [(0.5, 0.5), (0.75, 0.35)]
    )
    resolution: int = 1024
    fovea_deg: float = 2.0
    steps: int | None = None
    device: str = "cpu"
    dtype: str | None = None


def layouts(settings: LoraQualitySettings) -> list[tuple[str, float | None, LayoutSpec]]:
    """(layout label, acuity strength or None, spec): acuity strengths, then circles."""
    out = [
        (f"acuity s={s:g}", float(s), LayoutSpec(mode="acuity", strength=s))
        for s in settings.strengths
    ]
    for k in settings.circle_factors:
        spec = LayoutSpec(mode="circle", circle_radius=0.33, periphery_factor=int(k))
        out.append((f"circle p{k}", None, spec))
    return out


def load_variants(settings: LoraQualitySettings) -> dict:
    """{``lora``: the model with the LoRA merged, ``base``: without it}, both on the release's
    token rules (ids and cross-resolution attention), so the LoRA is the only difference."""
    from generator.loading import load_generator

    common = dict(device=settings.device, dtype=settings.dtype, token_rules="release")
    return {
        LORA: load_generator(settings.model, lora=settings.lora, **common),
        BASE: load_generator(settings.model, **common),
    }


def run_lora_quality(settings: LoraQualitySettings, *, models=None, progress: bool = True) -> dict:
    """Score every variant x layout x prompt x seed x gaze; returns ``records`` (one per image),
    ``summary`` (:func:`summarise`) and ``interrupted``: Ctrl-C (KeyboardInterrupt) ended the
    run, whose records are those of the prompts and seeds scored whole by then (raised again
    when none was)."""
    from generator.evaluation.quality_metrics import JodMetric
    from generator.progress import progress_bar

    models = models or load_variants(settings)
    res = settings.resolution
    geometry = StimulusGeometry(display=default_display(), image_width_px=res, image_height_px=res)
    jod = JodMetric(geometry.display, device=settings.device)
    jobs = layouts(settings)
    total = (
        len(settings.prompts)
        * len(settings.seeds)
        * len(models)
        * (1 + len(settings.gazes_frac) * len(jobs))
    )
    bar = progress_bar(total=total, desc="bench lora", unit="image", enabled=progress)
    records, interrupted = [], False
    try:
        for prompt in settings.prompts:
            for seed in settings.seeds:
                # Both variants of a prompt and seed, or none: the LoRA's gain compares like
                # with like also after Ctrl-C.
                records += _score(settings, models, jobs, jod, geometry, prompt, seed, bar)
    except KeyboardInterrupt:
        if not records:
            raise
        interrupted = True
    finally:
        bar.close()
    summary = {**summarise(records, settings), "interrupted": interrupted}
    return {"records": records, "summary": summary, "interrupted": interrupted}


def _score(settings, models, jobs, jod, geometry, prompt, seed, bar) -> list[dict]:
    """The records of one prompt and seed: every variant x gaze x layout."""
    from generator.evaluation.quality_metrics import fovea_mask, fovea_psnr_ssim

    res = settings.resolution
    records = []
    run = dict(seed=seed, geometry=geometry, condition=prompt, steps=settings.steps)
    for variant, gen in models.items():
        twin = gen.generate(gaze_px=None, spec=LayoutSpec(mode="full"), **run).image
        bar.update()
        for fx, fy in settings.gazes_frac:
            gaze = (fx * res, fy * res)
            mask = fovea_mask(geometry, gaze, settings.fovea_deg)
            for label, strength, spec in jobs:
                out = gen.generate(gaze_px=gaze, spec=spec, **run)
                psnr, ssim = fovea_psnr_ssim(out.image, twin, mask)
                records.append(
                    {
                        "model_variant": variant,
                        "layout": label,
                        "strength": strength,
                        "prompt": prompt,
                        "seed": seed,
                        "gaze_px": list(gaze),
                        "jod": jod.jod(out.image, twin, gaze),
                        "fovea_psnr_db": psnr,
                        "fovea_ssim": ssim,
                        "tokens": out.tokens,
                        "token_ratio": out.layout.token_ratio,
                        "resolution": res,
                        "steps": settings.steps or gen.steps,
                        "seconds": out.seconds,
                        "device": str(gen.denoiser.device),
                        "model": gen.model_id,
                    }
                )
                bar.update()
    return records


def summarise(records: list[dict], settings: LoraQualitySettings) -> dict:
    """Medians per variant and layout, in ``fovea bench quality``'s ``medians`` table form
    (:func:`generator.evaluation.quality_summary.medians_table`; circle layouts as variants
    ``<v>-circle-p<k>``, so :func:`generator.evaluation.quality_plot.plot_quality` draws it),
    and the LoRA's gain over the base model (median JOD difference) per layout."""
    from generator.evaluation.quality_summary import medians_table

    def table_variant(r: dict) -> str:
        if r["strength"] is not None:
            return r["model_variant"]
        return f"{r['model_variant']}-{r['layout'].replace(' ', '-')}"

    medians = medians_table([{**r, "model_variant": table_variant(r)} for r in records])
    by_layout: dict[str, dict] = {}
    for r in records:
        row = medians[table_variant(r)][str(r["strength"])]
        by_layout.setdefault(r["layout"], {})[r["model_variant"]] = row
    gain = {
        label: (
            None
            if None in (v.get(LORA, {}).get("jod_median"), v.get(BASE, {}).get("jod_median"))
            else v[LORA]["jod_median"] - v[BASE]["jod_median"]
        )
        for label, v in by_layout.items()
    }
    return {
        "title": "fovea bench lora",
        "model": settings.model,
        "lora": str(Path(settings.lora).name),
        "resolution": settings.resolution,
        "prompts": list(settings.prompts),
        "seeds": list(settings.seeds),
        "settings": {k: v for k, v in asdict(settings).items() if k not in ("prompts", "seeds")},
        "medians": medians,
        "by_layout": by_layout,
        "lora_jod_gain_by_layout": gain,
    }
