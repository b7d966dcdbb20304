"""``fovea bench latent``: the default model's pixel space against the latent space of a small
autoencoder trained here (``generator.training.autoencoder``), measured side by side in one run.

Both spaces see the same token layout: a 16 px pixel token and a 2 x 2 patch of an f8 latent (or
one f16 cell) cover the same image block, so a latent model saves no tokens; what it adds is the
decoder, which is convolutional over the WHOLE image at full resolution, whatever the layout. The
latent generator here is the pixel model's transformer config with the latent's token width
(random weights: timing only) on the trained autoencoder's decoder, sampled exactly like the pixel
model. Reported per size: foveated generation time of both (wall and process CPU, medians of
alternating runs after a warm-up), the decode stage alone (pixel space: unpatchify), FLOPs of one
transformer step and of the decoder, parameter counts; reference decoders (untrained, e.g. TAESD's
width 64) give the decode cost of other sizes of the same architecture. Reconstruction quality of
held-out photos is in :mod:`generator.evaluation.latent_recon`.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from generator.bench import gaze_points, transformer_flops
from generator.codecs import VaeCodec, to_uint8_image
from generator.evaluation.latent_scene import LatentSceneDenoiser, LatentSceneEncoder
from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec
from generator.loading import load_generator
from generator.pipeline import FoveatedGenerator
from generator.tokens import unpack
from generator.training.autoencoder import AeConfig, load_autoencoder

# The project's speed targets for one foveated generation on the lab CPU, seconds by image side.
BUDGET_S = {512: 1.0, 1024: 2.0}


@dataclass
class LatentSettings:
    """What ``fovea bench latent`` runs. Sizes in pixels.

    Attributes:
        ae_path: trained autoencoder (file or run folder); None: an untrained ``AeConfig()``
            (timing only, the reconstruction numbers are then meaningless).
        pixel_model: the pixel-space generator (``default`` or a preset such as ``tiny``).
        sizes_px: generated image sides; strengths: acuity strengths of the foveated layouts.
        repeats: timed runs per measurement (median) after one warm-up.
        reference_aes: untrained architectures (``tiny-f8c4w64`` = TAESD) whose decoders are timed too.
        recon_crops_px: held-out centre-crop sides scored for reconstruction; jod: also JOD.
        max_decode_fraction: the latent space is too slow if decoding alone takes more than this
            fraction of the speed budget (the transformer needs the rest).
    """

    ae_path: str | None = "runs/ae"
    pixel_model: str = "default"
    sizes_px: list[int] = field(default_factory=lambda: [512, 1024])
    strengths: list[float] = field(default_factory=lambda: [0.5, 1.0])
    repeats: int = 3
    reference_aes: list[str] = field(
        default_factory=lambda: ["tiny-f8c4w64", "tiny-f8c4w16", "kl-f16c16w16"]
    )
    recon_crops_px: list[int] = field(default_factory=lambda: [256, 512])
    jod: bool = True
    data: str | None = None
    max_decode_fraction: float = 0.5


def latent_generator(pixel: FoveatedGenerator, ae, config: AeConfig) -> FoveatedGenerator:
    """The pixel generator's transformer config and sampler on the autoencoder's latent tokens
    (for the scene-conditioned default model: :mod:`generator.evaluation.latent_scene`)."""
    from diffusers import FluxTransformer2DModel

    cells = pixel.token_px // config.factor
    if cells < 1 or cells * config.factor != pixel.token_px:
        raise ValueError(f"{config.name} cannot tile {pixel.token_px} px tokens")
    d, encoder = pixel.denoiser, pixel.encoder
    latent_width = config.latent_channels * cells**2
    if pixel.takes_scene:  # the default model: scene patches on each token, finish stages
        denoiser = LatentSceneDenoiser(d, latent_width=latent_width)
        encoder = LatentSceneEncoder(encoder)
    else:
        tcfg = {k: v for k, v in d.transformer.config.items() if not k.startswith("_")}
        tcfg.update(in_channels=latent_width, out_channels=None)
        torch.manual_seed(0)
        transformer = FluxTransformer2DModel.from_config(tcfg).eval().requires_grad_(False)
        denoiser = type(d)(transformer, prediction=d.prediction, x_pred_t_min=d.x_pred_t_min)
    return FoveatedGenerator(
        denoiser=denoiser,
        encoder=encoder,
        codec=VaeCodec(ae, cells_per_token=cells, px_per_cell=config.factor),
        model_id=f"latent-{config.name} (random transformer)",
        steps=pixel.steps,
        shift=pixel.shift,
        guidance_scale=pixel.guidance_scale,
    )


def median_seconds(fn, repeats: int) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(statistics.median(times))


@torch.no_grad()
def decode_stage(generator: FoveatedGenerator, tokens: torch.Tensor, layout) -> None:
    """What ``FoveatedGenerator.generate`` does after sampling: unpack, decode, to uint8."""
    grid = unpack(tokens, layout, p=generator.codec.cells_per_token)
    to_uint8_image(generator.codec.decode(grid))


def decoder_cost(ae, config: AeConfig, size_px: int, repeats: int) -> dict:
    """Decode seconds and FLOPs of a full ``size_px`` image's latent grid."""
    z = torch.randn(1, config.latent_channels, size_px // config.factor, size_px // config.factor)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        ae.decode(z)
    with torch.no_grad():
        seconds = median_seconds(lambda: ae.decode(z), repeats)
    return {"decode_s": seconds, "decode_gflops": counter.get_total_flops() / 1e9}


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def _part_params(ae, part: str) -> int:
    """Parameters of the encoder or decoder, with ``AutoencoderKL``'s 1x1 quant conv."""
    quant = "quant_conv" if part == "encoder" else "post_quant_conv"
    return _params(getattr(ae, part)) + _params(getattr(ae, quant, None))


def foveated_timings(gens: dict, geometry, spec: LayoutSpec, repeats: int) -> tuple[dict, object]:
    """Alternating generations (one warm-up each) -> (median wall / denoise / CPU seconds of each
    generator, the layout)."""
    gaze = gaze_points(geometry.image_width_px)["centre"]
    kwargs = dict(seed=0, geometry=geometry, gaze_px=gaze, spec=spec)
    runs = {name: [] for name in gens}
    for g in gens.values():
        g.generate(**kwargs)
    for _ in range(repeats):
        for name, g in gens.items():
            cpu = time.process_time()
            r = g.generate(**kwargs)
            runs[name].append((r.seconds, r.denoise_seconds, time.process_time() - cpu, r))
    out = {"strength": spec.strength}
    for name, rs in runs.items():
        for i, key in enumerate(("s", "denoise_s", "cpu_s")):
            out[f"{name}_{key}"] = float(statistics.median(r[i] for r in rs))
    layout = runs[next(iter(gens))][0][3].layout
    out.update(tokens=layout.num_tokens, tokens_full=layout.num_tokens_full)
    out["token_ratio"] = layout.token_ratio
    return out, layout


def run_speed(settings: LatentSettings, pixel, latent, ae, config: AeConfig, progress) -> dict:
    """Per-size timings, FLOPs and parameter counts (the speed half of the benchmark)."""
    gens = {"pixel": pixel, "latent": latent}
    references = {name: AeConfig.from_name(name) for name in settings.reference_aes}
    sizes = []
    for size in settings.sizes_px:
        geometry = StimulusGeometry(
            display=default_display(), image_width_px=size, image_height_px=size
        )
        row = {"resolution_px": size, "budget_s": BUDGET_S.get(size), "foveated": []}
        for strength in settings.strengths:
            spec = LayoutSpec(mode="acuity", strength=strength)
            timing, layout = foveated_timings(gens, geometry, spec, settings.repeats)
            for name, g in gens.items():
                timing[f"{name}_step_gflops"] = transformer_flops(g, layout) / 1e9
            row["foveated"].append(timing)
            progress(f"{size} px s={strength}: {timing}")
        full = pixel.layout(geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"))
        for name, g in gens.items():
            tokens = g.noise_tokens(layout, seed=0)
            row[f"{name}_decode_s"] = median_seconds(
                lambda g=g, tokens=tokens, layout=layout: decode_stage(g, tokens, layout),
                settings.repeats,
            )
            row[f"{name}_step_gflops_full"] = transformer_flops(g, full) / 1e9
        row["latent_decoder"] = decoder_cost(ae, config, size, settings.repeats)
        row["reference_decoders"] = {}
        for name, ref in references.items():
            torch.manual_seed(0)
            ref_ae = ref.build().eval().requires_grad_(False)
            row["reference_decoders"][name] = {
                **decoder_cost(ref_ae, ref, size, settings.repeats),
                "decoder_params": _part_params(ref_ae, "decoder"),
            }
        progress(
            f"{size} px decode: pixel {row['pixel_decode_s']:.3f} s, latent {row['latent_decode_s']:.3f} s"
        )
        sizes.append(row)
    params = {
        "pixel_transformer": _params(pixel.denoiser.transformer),
        "latent_transformer": _params(latent.denoiser.transformer),
        "ae_encoder": _part_params(ae, "encoder"),
        "ae_decoder": _part_params(ae, "decoder"),
    }
    return {"sizes": sizes, "params": params}


def machine() -> dict:
    import diffusers

    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_1_5_15": list(os.getloadavg()),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "python": sys.version.split()[0],
    }


def run_latent_compare(settings: LatentSettings, *, progress=print) -> dict:
    """The whole comparison as one JSON-able dict."""
    from generator.evaluation.latent_recon import reconstruction
    from generator.evaluation.latent_report import train_summary, verdict

    if settings.ae_path:
        ae, config = load_autoencoder(Path(settings.ae_path))
    else:
        config = AeConfig()
        torch.manual_seed(0)
        ae = config.build().eval().requires_grad_(False)
    pixel = load_generator(settings.pixel_model)
    latent = latent_generator(pixel, ae, config)
    before = machine()
    progress(f"machine before: {before}")
    speed = run_speed(settings, pixel, latent, ae, config, progress)
    recon = reconstruction(ae, settings, factor=config.factor, progress=progress)
    after = machine()
    return {
        "benchmark": "latent_vs_pixel",
        "settings": asdict(settings),
        "budget_s": {str(k): v for k, v in BUDGET_S.items()},
        "machine": {**before, "load_avg_1_5_15_after": after["load_avg_1_5_15"]},
        "autoencoder": {
            "architecture": config.name,
            "config": asdict(config),
            **train_summary(settings.ae_path),
        },
        "pixel_model": pixel.model_id,
        "steps": pixel.steps,
        "params": speed["params"],
        "sizes": speed["sizes"],
        "reconstruction": recon["latent"],
        "pixel_bound": recon["pixel"],
        "verdict": verdict(
            speed, recon["latent"], settings.max_decode_fraction, steps=latent.steps
        ),
    }
