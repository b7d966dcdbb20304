"""``fovea bench generator``: full versus foveated generation on the same model and seed.

Timings are medians of ``repeats`` runs after a warm-up; the FLOP ratio (``ideal_speedup``) comes
from counting one transformer forward of each token set with ``torch.utils.flop_counter``
(matrix products and attention).
"""

from __future__ import annotations

import statistics

import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec
from generator.pipeline import FoveatedGenerator

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
    cond = generator.encoder.encode(None, device=d.device, dtype=d.dtype)
    ids = d.positions(layout, text_len=cond.text.shape[1])
    t = torch.ones(1, device=d.device, dtype=d.dtype)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        d(noise, ids=ids, t=t, cond=cond)
    return int(counter.get_total_flops())


def _timed(generator, repeats: int, **kwargs):
    runs = [generator.generate(**kwargs) for _ in range(repeats)]
    return (
        statistics.median(r.seconds for r in runs),
        statistics.median(r.denoise_seconds for r in runs),
        runs[0],
    )


def run_generator_benchmark(
    *,
    model: str,
    sizes: list[int],
    steps: int,
    repeats: int = 1,
    device: str = "cpu",
    dtype: str | None = None,
) -> list[dict]:
    """Benchmark records (fields pinned in DESIGN.md) for every size x gaze x layout setting."""
    generator = FoveatedGenerator.load(model, device=device, dtype=dtype)
    display = default_display()
    records = []
    jobs = [(s, g, n, spec) for s in sizes for g in gaze_points(s) for n, spec in SETTINGS]
    progress = tqdm(total=len(jobs) + len(sizes), desc="bench generator", unit="run")
    for size in sizes:
        geometry = StimulusGeometry(display=display, image_width_px=size, image_height_px=size)
        full_kwargs = dict(
            seed=0, geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"), steps=steps
        )
        generator.generate(**full_kwargs)  # warm-up
        full_s, full_denoise_s, full = _timed(generator, repeats, **full_kwargs)
        flops_full = transformer_flops(generator, full.layout)
        progress.update()
        for gaze_name, gaze in gaze_points(size).items():
            for setting, spec in SETTINGS:
                kwargs = dict(seed=0, geometry=geometry, gaze_px=gaze, spec=spec, steps=steps)
                generator.generate(**kwargs)  # warm-up for this token count
                fov_s, fov_denoise_s, fov = _timed(generator, repeats, **kwargs)
                flops_fov = transformer_flops(generator, fov.layout)
                records.append(
                    {
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
                        "flops_full": flops_full,
                        "flops_foveated": flops_fov,
                        "ideal_speedup": flops_full / flops_fov,
                        "ms_per_step_full": 1000 * full_denoise_s / steps,
                        "ms_per_step_foveated": 1000 * fov_denoise_s / steps,
                        "steps": steps,
                        "device": str(generator.denoiser.device),
                        "dtype": str(generator.denoiser.dtype).removeprefix("torch."),
                        "torch_threads": torch.get_num_threads(),
                        "model": generator.model_id,
                    }
                )
                progress.update()
    progress.close()
    return records
