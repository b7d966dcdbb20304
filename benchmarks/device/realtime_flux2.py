"""Fixation-to-image latency on one GPU: klein-4B-sized and FLUX.1-schnell-sized, random weights.

One frame is what the gaze-contingent loop does after a fixation: build the layout for the gaze,
pack the seed's noise on it, sample ``steps`` Euler steps (prompt embeddings cached on the
device), unpack, decode (the foveated decode of :mod:`generator.foveated_decode` for foveated
layouts, a full VAE decode for the full-resolution twin), convert to uint8 and wait for the GPU.
Gaze points cycle through a fixed list (every layout shape is warmed up first). Records (JSON
list): ``device``, ``model`` (naming the size), ``resolution``, ``steps``, ``setting``, token
counts, ``latency_median_s``, ``latency_p95_s`` (fixation to image ready), ``speedup`` (the full
layout's median over this one's, same model and seed), the medians of each stage, and the
``command``. Every setting runs twice: ``sampler`` ``eager`` (one Python launch per kernel) and
``static+cuda-graphs`` (:mod:`generator.static_sampler`: token counts padded to 128-token buckets
with the padding masked out of attention, one CUDA graph per bucket replayed per step; captured
during the warm-up); ``speedup`` compares with the full layout under the same sampler,
``speedup_vs_eager_full`` with the eager full layout. A capture that fails is logged and the same
static shapes run without graphs (``sampler`` ``static``); a static loop that fails even so leaves
the model's eager records. Last, ``sampler`` ``pipeline``: the kit's own ``FoveatedGenerator.generate`` as
the generation services call it in a session (static shapes with the same graphs, ``decode =
"foveated"``, the uint8 image on the host), for the full layout and acuity s = 1. For the FLUX.2
model a last setting times the release's circle rule, ids and
cross-resolution attention (:mod:`generator.crpa`, eager only), the cost of running the paper's
LoRA as trained. ``--decode-json PATH`` also times the decode alone at the centre gaze of acuity
s = 1 (full and foveated decode, the VAE in contiguous and channels-last memory format), for
choosing the decode's layout on the GPU. ``--compile`` wraps the transformer in ``torch.compile`` (static shapes: one graph per
token count, compiled during the warm-up; off by default, compiling a 4B model per shape takes
minutes of the device budget).

    python benchmarks/device/realtime_flux2.py --json OUT.json            # on the GPU
    python benchmarks/device/realtime_flux2.py --json OUT.json --smoke    # tiny sizes, CPU

Sizes: FLUX.2 [klein] 4B: 5 double + 20 single blocks, 24 heads x 128, joint_attention_dim 7680,
128-channel tokens, ``AutoencoderKLFlux2`` at its default (released) size; FLUX.1-schnell:
19 + 38 blocks, 24 x 128, joint 4096, pooled 768, 16-channel ``AutoencoderKL``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from generator.arg_types import output_file, positive_int  # noqa: E402
from generator.atomic import write_atomic  # noqa: E402
from generator.codecs import VaeCodec  # noqa: E402
from generator.crpa import enable_crpa  # noqa: E402
from generator.denoiser import Conditioning, FluxDenoiser  # noqa: E402
from generator.flux2 import Flux2VaeCodec  # noqa: E402
from generator.foveated_decode import foveated_decode  # noqa: E402
from generator.geometry import StimulusGeometry, default_display  # noqa: E402
from generator.layout import LayoutSpec, build_layout  # noqa: E402
from generator.model_sizes import FLUX1_SCHNELL_SIZED, FLUX2_KLEIN_4B_SIZED  # noqa: E402
from generator.pipeline import FoveatedGenerator  # noqa: E402
from generator.release_layout import release_circle_layout  # noqa: E402
from generator.sampler import sample_euler  # noqa: E402
from generator.static_sampler import CaptureError, StaticSampler  # noqa: E402
from generator.tokens import pack, unpack  # noqa: E402

SETTINGS = (
    ("full", LayoutSpec(mode="full")),
    ("circle r=0.33 1/2x", LayoutSpec(mode="circle", circle_radius=0.33, periphery_factor=2)),
    ("circle r=0.33 1/4x", LayoutSpec(mode="circle", circle_radius=0.33, periphery_factor=4)),
    ("acuity s=1", LayoutSpec(mode="acuity", strength=1.0)),
)
RELEASE_SETTING = (  # FLUX.2 only: the release's token rule, ids and CRPA attention
    "release circle r=0.33 1/2x (CRPA)",
    LayoutSpec(mode="circle", circle_radius=0.33, periphery_factor=2),
)
SMOKE = dict(num_layers=1, num_single_layers=1, num_attention_heads=2)


def build_model(family: str, *, smoke: bool, device: str, dtype: torch.dtype):
    """(denoiser, codec, text (1, L, joint), pooled or None, model name) with random weights."""
    from diffusers import (
        AutoencoderKL,
        AutoencoderKLFlux2,
        Flux2Transformer2DModel,
        FluxTransformer2DModel,
    )

    scale = SMOKE if smoke else {}
    vae_small = dict(block_out_channels=(32, 32), layers_per_block=1, norm_num_groups=8)
    vae_small["down_block_types"] = ("DownEncoderBlock2D",) * 2
    vae_small["up_block_types"] = ("UpDecoderBlock2D",) * 2
    with torch.device(device):
        if family == "flux2-klein-4b":
            cfg = dict(FLUX2_KLEIN_4B_SIZED)
            transformer = Flux2Transformer2DModel(**{**cfg, **scale})
            codec = Flux2VaeCodec(AutoencoderKLFlux2(**(vae_small if smoke else {})))
            joint, pooled_dim = 7680, None
        else:
            cfg = dict(FLUX1_SCHNELL_SIZED)
            transformer = FluxTransformer2DModel(**{**cfg, **scale})
            vae = AutoencoderKL(latent_channels=16, **(vae_small if smoke else {}))
            codec = VaeCodec(vae, px_per_cell=2 if smoke else 8)
            joint, pooled_dim = 4096, 768
    transformer = transformer.to(device, dtype).eval()
    codec.vae = codec.vae.to(device, dtype).eval()
    g = torch.Generator().manual_seed(0)
    text_len = 16 if smoke else 512
    text = torch.randn(1, text_len, joint, generator=g).to(device, dtype)  # cached "prompt"
    pooled = None if pooled_dim is None else torch.randn(1, pooled_dim, generator=g)
    cond = Conditioning(text=text, pooled=None if pooled is None else pooled.to(device, dtype))
    name = f"{family}-sized (random weights{', smoke' if smoke else ''})"
    return FluxDenoiser(transformer), codec, cond, name


def one_frame(
    denoiser, codec, cond, geometry, gaze, spec, *, steps: int, seed: int = 0, static=None
):
    """Fixation -> image ready, timed by stage (seconds); ``static``: a StaticSampler."""
    device = denoiser.device
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    token_px = codec.cells_per_token * codec.px_per_cell
    if denoiser.position_ids == "release" and spec.mode == "circle":
        layout = release_circle_layout(
            geometry=geometry, gaze_px=gaze, spec=spec, patch_px=token_px
        )
    else:
        layout = build_layout(
            geometry=geometry,
            gaze_px=None if spec.mode == "full" else gaze,
            spec=spec,
            patch_px=token_px,
        )
    p = codec.cells_per_token
    gen = torch.Generator().manual_seed(seed)
    noise_grid = torch.randn(1, codec.channels, layout.grid_h * p, layout.grid_w * p, generator=gen)
    noise = pack(noise_grid, layout, p=p, noise=True).to(device, denoiser.dtype)
    ids = denoiser.positions(layout, text_len=cond.text.shape[1])
    sync()
    t1 = time.perf_counter()
    sampler = sample_euler if static is None else _static_sample(static)
    tokens = sampler(denoiser, noise, ids=ids, cond=cond, steps=steps, shift=3.0).tokens
    sync()
    t2 = time.perf_counter()
    grid = unpack(tokens.float(), layout, p=p)
    if spec.mode == "full":
        image = codec.decode(grid)
    else:
        image = foveated_decode(codec, grid, layout)
    frame = ((image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    sync()
    t3 = time.perf_counter()
    del frame
    return layout, {"prepare": t1 - t0, "denoise": t2 - t1, "decode": t3 - t2, "total": t3 - t0}


class CachedPrompt:
    """The session's cached prompt embeddings, as the pipeline's encoder hands them out."""

    def __init__(self, cond: Conditioning):
        self.cond, self.text_len = cond, cond.text.shape[1]

    def encode(self, condition, *, device, dtype) -> Conditioning:
        return self.cond


def pipeline_frame(generator, geometry, gaze, spec, *, steps: int, seed: int = 0):
    """Fixation -> uint8 image on the host through ``FoveatedGenerator.generate`` (its
    ``decode`` stage: everything but the sampler, the layout and noise included)."""
    t0 = time.perf_counter()
    out = generator.generate(
        seed=seed, geometry=geometry, gaze_px=None if spec.mode == "full" else gaze, spec=spec,
        steps=steps,
    )  # fmt: skip
    total = time.perf_counter() - t0
    return out.layout, {
        "prepare": total - out.seconds,
        "denoise": out.denoise_seconds,
        "decode": out.seconds - out.denoise_seconds,
        "total": total,
    }


def _static_sample(static):
    return lambda _denoiser, noise, **kwargs: static.sample(noise, **kwargs)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def time_setting(
    denoiser, codec, cond, geometry, spec, gazes, *, steps, repeats, driver=None
) -> dict:
    """``driver``: None (eager), a StaticSampler, or a FoveatedGenerator (the pipeline run)."""
    if isinstance(driver, FoveatedGenerator):
        frame = lambda gaze: pipeline_frame(driver, geometry, gaze, spec, steps=steps)  # noqa: E731
    else:
        frame = lambda gaze: one_frame(  # noqa: E731
            denoiser, codec, cond, geometry, gaze, spec, steps=steps, static=driver
        )
    for gaze in gazes:  # warm-up: every layout shape (and bucket graph) once
        frame(gaze)
    frames, tokens = [], []
    for i in range(repeats):
        layout, seconds = frame(gazes[i % len(gazes)])
        frames.append(seconds)
        tokens.append(layout.num_tokens)
    med = lambda key: statistics.median(f[key] for f in frames)  # noqa: E731
    return {
        "tokens_median": statistics.median(tokens),
        "tokens_full": layout.num_tokens_full,
        "latency_median_s": med("total"),
        "latency_p95_s": _p95([f["total"] for f in frames]),
        "prepare_median_s": med("prepare"),
        "denoise_median_s": med("denoise"),
        "decode_median_s": med("decode"),
        "frames": repeats,
    }


def gaze_points(size: int) -> list[tuple[float, float]]:
    """Fixations around the image: the centre and four points a fifth of the way in."""
    a, b = size / 5, size * 4 / 5
    return [(size / 2, size / 2), (a, a), (b, a), (a, b), (b, b)]


def static_agreement(denoiser, static, cond, geometry, *, steps: int, token_px: int) -> dict:
    """The static sampler (CUDA graphs on a GPU) against the eager one on the same noise, acuity
    s = 1 at an off-centre gaze (a padded, masked bucket): the tokens' largest absolute and
    relative RMS difference (bf16 rounding differs between kernels; a wrong mask or a stale
    buffer shows as a difference of the tokens' own size, relative RMS near 1)."""
    size = geometry.image_width_px
    spec = LayoutSpec(mode="acuity", strength=1.0)
    layout = build_layout(
        geometry=geometry, gaze_px=(0.3 * size, 0.4 * size), spec=spec, patch_px=token_px
    )
    channels = denoiser.transformer.config.in_channels
    gen = torch.Generator().manual_seed(1)
    noise = torch.randn(1, layout.num_tokens, channels, generator=gen)
    noise = noise.to(denoiser.device, denoiser.dtype)
    ids = denoiser.positions(layout, text_len=cond.text.shape[1])
    eager = sample_euler(denoiser, noise, ids=ids, cond=cond, steps=steps, shift=3.0).tokens
    graphed = static.sample(noise, ids=ids, cond=cond, steps=steps, shift=3.0).tokens
    diff = graphed.float() - eager.float()
    return {
        "tokens": layout.num_tokens,
        "max_abs_diff": float(diff.abs().max()),
        "rel_rms_diff": float(diff.pow(2).mean().sqrt() / eager.float().pow(2).mean().sqrt()),
    }


def prepare_static(denoiser, cond, geometry, *, steps: int, token_px: int, name: str):
    """(StaticSampler, its :func:`static_agreement`). When the CUDA graph capture fails
    (:class:`generator.static_sampler.CaptureError`), the error is logged and the same static
    shapes run without graphs (``sampler`` ``static``), so the model keeps its static and
    pipeline records; any other error is raised."""
    static = StaticSampler(denoiser)
    run = dict(steps=steps, token_px=token_px)
    try:
        agreement = static_agreement(denoiser, static, cond, geometry, **run)
    except CaptureError as error:
        print(f"{name}: {error}; static shapes without graphs", flush=True)
        static = StaticSampler(denoiser, graphs=False)
        agreement = static_agreement(denoiser, static, cond, geometry, **run)
    print(json.dumps({"model": name, "static_vs_eager": agreement}), flush=True)
    return static, agreement


def decode_variants(codec, *, name: str, size: int, repeats: int, device: str) -> list[dict]:
    """The decode alone (a random latent grid, acuity s = 1 at the centre): full and foveated,
    contiguous and channels-last VAE; median seconds of ``repeats`` after two warm-ups."""
    geometry = StimulusGeometry(
        display=default_display(), image_width_px=size, image_height_px=size
    )
    token_px = codec.cells_per_token * codec.px_per_cell
    spec = LayoutSpec(mode="acuity", strength=1.0)
    layout = build_layout(
        geometry=geometry, gaze_px=(size / 2, size / 2), spec=spec, patch_px=token_px
    )
    p = codec.cells_per_token
    gen = torch.Generator().manual_seed(0)
    grid = torch.randn(1, codec.channels, layout.grid_h * p, layout.grid_w * p, generator=gen)
    grid = grid.to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    records = []
    for memory_format in (torch.contiguous_format, torch.channels_last):
        codec.vae = codec.vae.to(memory_format=memory_format)
        for decode, fn in (
            ("full", lambda: codec.decode(grid)),
            ("foveated", lambda: foveated_decode(codec, grid, layout)),
        ):
            times = []
            for i in range(repeats + 2):
                sync()
                t0 = time.perf_counter()
                with torch.no_grad():
                    fn()
                sync()
                if i >= 2:
                    times.append(time.perf_counter() - t0)
            records.append(
                {
                    "model": name, "resolution": size, "decode": decode,
                    "memory_format": str(memory_format).removeprefix("torch."),
                    "tokens": layout.num_tokens, "median_s": statistics.median(times),
                    "p95_s": _p95(times), "repeats": repeats,
                }
            )  # fmt: skip
    codec.vae = codec.vae.to(memory_format=torch.contiguous_format)
    return records


def time_model(
    family: str, args, results: Results, *, device: str, dtype: torch.dtype, command: str
) -> None:
    """Records for one model, added to ``results`` (saved at once): every setting eager, then at
    static shapes (CUDA graphs on a GPU), then (FLUX.2) the release's rules with CRPA, eager; and
    the decode-alone records when ``--decode-json`` is given."""
    denoiser, codec, cond, name = build_model(family, smoke=args.smoke, device=device, dtype=dtype)
    if args.compile:  # one graph per token count; every shape is compiled during the warm-up
        denoiser.transformer = torch.compile(denoiser.transformer, dynamic=False)
    size = args.smoke_px if args.smoke else 1024
    geometry = StimulusGeometry(
        display=default_display(), image_width_px=size, image_height_px=size
    )
    runs = [("eager", spec_name, spec) for spec_name, spec in SETTINGS]
    if not args.compile:
        runs += [("static", spec_name, spec) for spec_name, spec in SETTINGS]
        runs += [("pipeline", n, spec) for n, spec in SETTINGS if n in ("full", "acuity s=1")]
    if denoiser.axes == 4:
        runs.append(("eager", *RELEASE_SETTING))
    full_median, static, static_failed = {}, None, False
    for sampler, setting, spec in runs:
        if setting == RELEASE_SETTING[0]:
            denoiser.position_ids = "release"
            denoiser.crpa = enable_crpa(denoiser.transformer)
        if sampler != "eager" and static is None and not static_failed:
            try:
                static, agreement = prepare_static(
                    denoiser, cond, geometry, steps=args.steps, name=name,
                    token_px=codec.cells_per_token * codec.px_per_cell,
                )  # fmt: skip
            except Exception as error:  # noqa: BLE001 - keep the eager records and the next model
                print(f"{name}: no static sampler ({type(error).__name__}: {error})", flush=True)
                static_failed = True
        if sampler != "eager" and static is None:
            continue
        sampler_name = static.name if sampler == "static" else sampler
        driver = {"eager": None, "static": static, "pipeline": None}[sampler]
        if sampler == "pipeline":
            driver = FoveatedGenerator(
                denoiser=denoiser, encoder=CachedPrompt(cond), codec=codec, model_id=name,
                steps=args.steps, shift=3.0,
            )  # fmt: skip
            driver.static, driver.decode = static, "foveated"
        try:
            timing = time_setting(
                denoiser, codec, cond, geometry, spec, gaze_points(size), steps=args.steps,
                repeats=args.repeats, driver=driver,
            )  # fmt: skip
        except Exception as error:  # noqa: BLE001 - a failed capture must not lose the run
            if sampler == "eager":
                raise
            print(f"{name} {setting} {sampler_name}: {type(error).__name__}: {error}", flush=True)
            continue
        if spec.mode == "full":
            full_median[sampler] = timing["latency_median_s"]
        record = {
            "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "model": name,
            "resolution": size,
            "steps": args.steps,
            "setting": setting,
            "sampler": sampler_name,
            "layout": spec.as_dict(),
            **timing,
            "speedup": full_median[sampler] / timing["latency_median_s"],
            "speedup_vs_eager_full": full_median["eager"] / timing["latency_median_s"],
            "dtype": str(dtype).removeprefix("torch."),
            "compiled": bool(args.compile),
            "static_buckets": [] if static is None else [b for b, _ in static.captured],
            "static_vs_eager": None if sampler == "eager" else agreement,
            "seed": 0,
            "command": command,
        }
        results.add_frames(record)
    if args.decode_json:
        repeats = max(2, args.repeats // 2)
        for record in decode_variants(codec, name=name, size=size, repeats=repeats, device=device):
            results.add_decode(record)


def _records(path: str | None) -> list[dict]:
    """The JSON list at ``path``; empty when there is no such file."""
    return json.loads(Path(path).read_text()) if path and Path(path).exists() else []


class Results:
    """The two JSON files, rewritten after every record: a run cut short by the device's time
    limit (or a model that fails) keeps everything measured before it."""

    def __init__(self, frames_path: str, decode_path: str | None, *, append: bool = False):
        """``append``: keep the records already in the files (one process per model)."""
        self.frames_path, self.decode_path = Path(frames_path), decode_path
        self.frames: list[dict] = _records(frames_path) if append else []
        self.decodes: list[dict] = _records(decode_path) if append else []

    def add_frames(self, record: dict) -> None:
        self.frames.append(record)
        write_atomic(self.frames_path, json.dumps(self.frames, indent=2))
        print(json.dumps(record), flush=True)

    def add_decode(self, record: dict) -> None:
        self.decodes.append(record)
        write_atomic(Path(self.decode_path), json.dumps(self.decodes, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", required=True, type=output_file)
    parser.add_argument("--smoke", action="store_true", help="tiny models on the CPU")
    parser.add_argument(
        "--smoke-px", type=int, default=128, help="--smoke: the image side in px (default 128)"
    )
    parser.add_argument("--repeats", type=positive_int, default=20)
    parser.add_argument("--steps", type=positive_int, default=4)
    parser.add_argument("--models", default="flux2-klein-4b,flux1-schnell")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the transformer (static shapes)"
    )
    parser.add_argument(
        "--decode-json", default=None, type=output_file, help="also time the decode alone, here"
    )
    parser.add_argument(
        "--append", action="store_true", help="add to the records already in the JSON files"
    )
    parser.add_argument(
        "--dtype", choices=("bfloat16", "float32"), default=None,
        help="default: bfloat16 on a GPU, float32 on the CPU (--smoke --dtype bfloat16: the "
        "GPU's dtypes in the dry run)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():  # full-sized models: hours on a CPU
        print(
            f"error: no CUDA GPU here (torch {torch.__version__}): run it on a GPU machine, or "
            "--smoke for tiny models on the CPU",
            file=sys.stderr,
        )
        return 2
    device = "cpu" if args.smoke else "cuda"
    dtype = getattr(torch, args.dtype or ("float32" if device == "cpu" else "bfloat16"))
    command = "python benchmarks/device/realtime_flux2.py " + " ".join(argv or sys.argv[1:])
    results = Results(args.json, args.decode_json, append=args.append)
    for family in args.models.split(","):
        time_model(family, args, results, device=device, dtype=dtype, command=command)
        if device == "cuda":
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
