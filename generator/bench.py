"""``fovea bench generator``: full versus foveated generation on the same model and seed.

Full and foveated runs alternate (``repeats`` pairs after a warm-up) so that both see the same
load on a shared machine; timings are medians, wall clock (``speedup``, ``denoise_speedup``) and
process CPU time (``cpu_speedup``, robust to other processes on the machine). The FLOP ratio (``ideal_speedup``) comes
from counting one transformer forward of each token set with ``torch.utils.flop_counter``
(matrix products and attention). For prompt models each record also splits one foveated
generation into encode/denoise/decode seconds and shares, with the foveated decode
(:mod:`generator.foveated_decode`) beside the full one.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec
from generator.loading import load_generator
from generator.pipeline import FoveatedGenerator
from generator.progress import progress_bar

SETTINGS = (
    ("acuity s=0.5", LayoutSpec(mode="acuity", strength=0.5)),
    ("acuity s=1", LayoutSpec(mode="acuity", strength=1.0)),
    ("circle r=0.33 1/2x", LayoutSpec(mode="circle", circle_radius=0.33, periphery_factor=2)),
)


def gaze_points(size: int) -> dict[str, tuple[float, float]]:
    """The centre and an off-centre point (a quarter across, a third down)."""
    return {"centre": (size / 2, size / 2), "off-centre": (size / 4, size / 3)}


def transformer_flops(generator: FoveatedGenerator, layout) -> int:
    """FLOPs of one transformer forward over the layout's tokens (text tokens included)."""
    d = generator.denoiser
    noise = generator.noise_tokens(layout, seed=0).to(d.device, d.dtype)
    scene = None
    if generator.takes_scene:
        size = StimulusGeometry(
            display=default_display(),
            image_width_px=layout.grid_w * layout.token_px,
            image_height_px=layout.grid_h * layout.token_px,
        )
        scene = generator.pool_scene(size, seed=0)
    cond = generator.conditioning(layout, scene=scene)
    ids = d.positions(layout, text_len=cond.text.shape[1])
    t = torch.ones(1, device=d.device, dtype=d.dtype)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        d(noise, ids=ids, t=t, cond=cond)
    return int(counter.get_total_flops())


def _paired_runs(generator, repeats: int, full_kwargs: dict, fov_kwargs: dict):
    """Alternate full and foveated runs, so both see the same machine load (a shared machine's
    load changes over minutes); wall and process CPU seconds of each run."""
    runs = {"full": [], "fov": []}
    for _ in range(repeats):
        for name, kwargs in (("full", full_kwargs), ("fov", fov_kwargs)):
            cpu_start = time.process_time()
            result = generator.generate(**kwargs)
            runs[name].append((result, time.process_time() - cpu_start))
    return runs


def _stage_split(generator: FoveatedGenerator, layout, *, steps: int) -> dict:
    """Encode/denoise/decode seconds and shares with the foveated decode, sampling ``steps``
    steps as the timed runs do (prompt models only;
    :func:`generator.foveated_decode.stage_seconds`)."""
    if generator.takes_scene:
        return {}
    from generator.foveated_decode import stage_seconds

    return stage_seconds(generator, layout, steps=steps)


def _median(values) -> float:
    return float(statistics.median(values))


def run_generator_benchmark(
    *,
    model: str,
    sizes: list[int],
    steps: int | None = None,
    repeats: int = 1,
    device: str = "cpu",
    dtype: str | None = None,
) -> list[dict]:
    """Benchmark records (fields pinned: docs/design.md section 6), per size x gaze x layout.

    Ctrl-C (KeyboardInterrupt) ends the run: the records measured by then are returned with
    ``interrupted`` true (of ``records_planned``); with none yet it is raised again."""
    generator = load_generator(model, device=device, dtype=dtype)
    steps = generator.steps if steps is None else steps
    planned = len(sizes) * len(gaze_points(1)) * len(SETTINGS)
    progress = progress_bar(total=planned + len(sizes), desc="bench generator", unit="run")
    records, interrupted = [], False
    try:
        for size in sizes:
            for record in _size_records(generator, size, steps, repeats, progress):
                records.append(record)
    except KeyboardInterrupt:
        if not records:
            raise
        interrupted = True
    finally:
        progress.close()
    return [{**r, "interrupted": interrupted, "records_planned": planned} for r in records]


def _size_records(generator: FoveatedGenerator, size: int, steps: int, repeats: int, progress):
    """The records of one image size, each as soon as it is measured."""
    geometry = StimulusGeometry(
        display=default_display(), image_width_px=size, image_height_px=size
    )
    full_kwargs = dict(
        seed=0, geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"), steps=steps
    )
    full_layout = generator.layout(geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"))
    generator.generate(**full_kwargs)  # warm-up
    flops_full = transformer_flops(generator, full_layout)
    progress.update()
    for gaze_name, gaze in gaze_points(size).items():
        for setting, spec in SETTINGS:
            fov_kwargs = dict(seed=0, geometry=geometry, gaze_px=gaze, spec=spec, steps=steps)
            generator.generate(**fov_kwargs)  # warm-up for this token count
            runs = _paired_runs(generator, repeats, full_kwargs, fov_kwargs)
            full, fov = runs["full"][0][0], runs["fov"][0][0]
            full_s = _median(r.seconds for r, _ in runs["full"])
            fov_s = _median(r.seconds for r, _ in runs["fov"])
            full_denoise_s = _median(r.denoise_seconds for r, _ in runs["full"])
            fov_denoise_s = _median(r.denoise_seconds for r, _ in runs["fov"])
            full_cpu_s = _median(c for _, c in runs["full"])
            fov_cpu_s = _median(c for _, c in runs["fov"])
            flops_fov = transformer_flops(generator, fov.layout)
            split = _stage_split(generator, fov.layout, steps=steps)
            yield {
                "resolution": size,
                "gaze": gaze_name,
                "gaze_px": list(gaze),
                "setting": setting,
                "layout": spec.as_dict(),
                "tokens_full": full.tokens,
                "tokens_foveated": fov.tokens,
                "token_ratio": fov.layout.token_ratio,
                "seconds_full": full_s,
                "seconds_foveated": fov_s,
                "speedup": full_s / fov_s,
                "denoise_seconds_full": full_denoise_s,
                "denoise_seconds_foveated": fov_denoise_s,
                "denoise_speedup": full_denoise_s / fov_denoise_s,
                "cpu_seconds_full": full_cpu_s,
                "cpu_seconds_foveated": fov_cpu_s,
                "cpu_speedup": full_cpu_s / fov_cpu_s,
                "flops_full": flops_full,
                "flops_foveated": flops_fov,
                "ideal_speedup": flops_full / flops_fov,
                "ms_per_step_full": 1000 * full_denoise_s / steps,
                "ms_per_step_foveated": 1000 * fov_denoise_s / steps,
                "steps": steps,
                "repeats": repeats,
                "device": str(generator.denoiser.device),
                "dtype": str(generator.denoiser.dtype).removeprefix("torch."),
                "torch_threads": torch.get_num_threads(),
                "model": generator.model_id,
                **split,
            }
            progress.update()
