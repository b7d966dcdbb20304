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

from pathlib import Path

from generator.evaluation.quality_run import BOUNDS, QualityRun, QualitySettings
from generator.evaluation.quality_summary import NAIVE, SHIPPED

__all__ = ["BOUNDS", "QualitySettings", "load_models", "run_quality"]


def load_models(settings: QualitySettings) -> dict:
    """The shipped post-trained model and its base (the naive baseline) as generators."""
    from generator.models.weights_io import load_default_generator

    wdir = Path(settings.weights_dir) if settings.weights_dir else None
    return {
        SHIPPED: load_default_generator(
            device=settings.device, variant="foveated", weights_dir=wdir
        ),
        NAIVE: load_default_generator(device=settings.device, variant="base", weights_dir=wdir),
    }


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
        seed and model, plus the ``original`` and ``bicubic`` references per scene), and
        ``interrupted``: Ctrl-C (KeyboardInterrupt) ended the run, whose rows and summary are
        those scored by then (raised again when no record was scored yet).
    """
    models = dict(models) if models is not None else load_models(settings)
    run = QualityRun(settings, models, progress=progress)
    interrupted = False
    try:
        for bench in run.scenes:
            references = run.score_references(bench)
            for seed in settings.seeds:
                run.score_seed(references, seed)
    except KeyboardInterrupt:
        if not run.records:
            raise
        interrupted = True
    summary = run.summary()
    summary["interrupted"] = interrupted
    if sheets_dir is not None:
        from generator.evaluation.quality_plot import plot_quality
        from generator.evaluation.sheets import write_sheets

        summary["sheets"] = write_sheets(
            out_dir=Path(sheets_dir), rows=run.sheet_rows, scene_factor=run.factor
        )
        summary["sheets"]["jod_curve"] = plot_quality(
            [summary], Path(sheets_dir) / "jod_vs_token_ratio.png"
        )
    return {
        "records": run.records,
        "bounds": run.bounds,
        "full_resolution": run.full_rows,
        "summary": summary,
        "interrupted": interrupted,
    }
