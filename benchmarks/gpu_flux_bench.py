"""GPU benchmark: full versus foveated sampling with FLUX-sized transformers (random weights).

Run on a CUDA machine from the repo root:
    python benchmarks/gpu_flux_bench.py --json OUT.json
(``--smoke`` runs scaled-down models on the CPU to check the script.)

Models: a FLUX.1-schnell-sized ``FluxTransformer2DModel`` (19 double + 38 single blocks, 24 heads
x 128, joint_attention_dim 4096, 512 text tokens, 16-channel latents in 2x2 tokens) with a
FLUX.1-sized VAE for decoding, and a FLUX.2-klein-4B-sized ``Flux2Transformer2DModel`` (5 double +
20 single blocks, 24 x 128, joint_attention_dim 7680, 128-channel tokens; sizes from public
descriptions of the release). 1024^2 output = 4096 fine tokens of 16 px. Records: per-step
milliseconds full vs foveated, and end to end for 4 steps (noise to decoded image).
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffusers import AutoencoderKL, Flux2Transformer2DModel, FluxTransformer2DModel  # noqa: E402

from generator.arg_types import output_file, positive_int  # noqa: E402
from generator.atomic import write_atomic  # noqa: E402
from generator.bench import SETTINGS, transformer_flops  # noqa: E402
from generator.codecs import VaeCodec  # noqa: E402
from generator.denoiser import Conditioning, FluxDenoiser  # noqa: E402
from generator.errors import FoveaError  # noqa: E402
from generator.geometry import StimulusGeometry, default_display  # noqa: E402
from generator.layout import LayoutSpec  # noqa: E402
from generator.loading import check_device  # noqa: E402
from generator.model_sizes import FLUX1_SCHNELL_SIZED, FLUX2_KLEIN_4B_SIZED  # noqa: E402
from generator.pipeline import FoveatedGenerator  # noqa: E402

EXTRA_SETTINGS = (
    ("circle r=0.33 1/4x", LayoutSpec(mode="circle", circle_radius=0.33, periphery_factor=4)),
)


class RandomText:
    """Fixed random text embeddings standing in for a text encoder's output."""

    def __init__(self, *, text_len: int, dim: int, pooled_dim: int | None):
        g = torch.Generator().manual_seed(0)
        self.text = torch.randn(1, text_len, dim, generator=g, device="cpu")
        self.pooled = (
            None if pooled_dim is None else torch.randn(1, pooled_dim, generator=g, device="cpu")
        )
        self.text_len = text_len

    def encode(self, condition, *, device, dtype):
        pooled = None if self.pooled is None else self.pooled.to(device, dtype)
        return Conditioning(text=self.text.to(device, dtype), pooled=pooled)


def build(family: str, smoke: bool, device: str, dtype: torch.dtype) -> FoveatedGenerator:
    scale = dict(num_layers=1, num_single_layers=1, num_attention_heads=2) if smoke else {}
    text_len = 16 if smoke else 512
    with torch.device(device):  # initialise on the GPU: a 12 B model is slow to fill on a CPU
        return _build(family, scale, text_len, device, dtype)


def _build(family, scale, text_len, device, dtype):
    smoke = bool(scale)
    if family == "flux1-schnell":
        cfg = dict(FLUX1_SCHNELL_SIZED)
        cfg.update(scale)
        model = FluxTransformer2DModel(**cfg)
        text = RandomText(text_len=text_len, dim=4096, pooled_dim=768)
        latent_channels = 16
    else:
        cfg = dict(FLUX2_KLEIN_4B_SIZED)
        cfg.update(scale)
        model = Flux2Transformer2DModel(**cfg)
        text = RandomText(text_len=text_len, dim=7680, pooled_dim=None)
        latent_channels = 32
    blocks = (32, 64, 64, 64) if smoke else (128, 256, 512, 512)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=latent_channels,
        block_out_channels=blocks,
        layers_per_block=2,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=32 if not smoke else 16,
        scaling_factor=0.3611,
        shift_factor=0.1159,
    )
    model = model.to(device=device, dtype=dtype).eval()
    vae = vae.to(device=device, dtype=dtype).eval()
    return FoveatedGenerator(
        denoiser=FluxDenoiser(model),
        encoder=text,
        codec=VaeCodec(vae),
        model_id=f"{family}-sized (random weights)",
        steps=4,
        shift=3.0,
    )


def _timed(generator, geometry, repeats, gaze_px, spec):
    kw = dict(seed=0, geometry=geometry, gaze_px=gaze_px, spec=spec, steps=4)
    generator.generate(**kw)  # warm-up (kernels, allocator)
    runs = [generator.generate(**kw) for _ in range(repeats)]
    step_ms = statistics.median(1000 * s for r in runs for s in r.step_seconds)
    return step_ms, statistics.median(r.seconds for r in runs), runs[0]


def main(argv: list[str] | None = None) -> int:
    """Exit 0 with the records in --json; 2 and one ``error:`` line when no CUDA GPU is here
    (without --smoke)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", required=True, type=output_file)
    parser.add_argument("--smoke", action="store_true", help="tiny models on the CPU")
    parser.add_argument("--repeats", type=positive_int, default=3)
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    command = shlex.join(["python", "benchmarks/gpu_flux_bench.py", *argv])
    device = "cpu" if args.smoke else "cuda"
    try:
        check_device(device)
    except FoveaError as error:
        print(f"error: {error} (--smoke: tiny models on the CPU)", file=sys.stderr)
        return 2
    dtype = torch.float32 if args.smoke else torch.bfloat16
    size = 256 if args.smoke else 1024
    geometry = StimulusGeometry(
        display=default_display(), image_width_px=size, image_height_px=size
    )
    gaze = (size / 2, size / 2)
    records = []
    for family in ("flux1-schnell", "flux2-klein-4b"):
        generator = build(family, args.smoke, device, dtype)
        params = sum(p.numel() for p in generator.denoiser.transformer.parameters())

        timed = functools.partial(_timed, generator, geometry, args.repeats)
        full_ms, full_s, full = timed(None, LayoutSpec(mode="full"))
        flops_full = transformer_flops(generator, full.layout)
        for name, spec in (*SETTINGS, *EXTRA_SETTINGS):
            fov_ms, fov_s, fov = timed(gaze, spec)
            record = {
                "model": generator.model_id,
                "transformer_params": params,
                "resolution": size,
                "setting": name,
                "gaze": "centre",
                "tokens_full": full.tokens,
                "tokens_foveated": fov.tokens,
                "token_ratio": fov.layout.token_ratio,
                "ms_per_step_full": full_ms,
                "ms_per_step_foveated": fov_ms,
                "denoise_speedup": full_ms / fov_ms,
                "seconds_full": full_s,
                "seconds_foveated": fov_s,
                "speedup": full_s / fov_s,
                "steps": 4,
                "ideal_speedup": flops_full / transformer_flops(generator, fov.layout),
                "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                "dtype": str(dtype).removeprefix("torch."),
                "command": command,
            }
            records.append(record)
            print(json.dumps(record), flush=True)
        del generator
        if device == "cuda":
            torch.cuda.empty_cache()
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, json.dumps(records, indent=2))
    print(f"wrote {len(records)} records to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
