"""The embedded default model on a GPU: does the whole scene pipeline (transformer, refiner, detail
and periphery stages) run there, how fast, and how close are its images to the CPU's?

``protocols/threshold_2afc.toml`` runs ``model = "default"`` with ``device = "cuda"``. That path's
generation (the detail and periphery stages were added after the last GPU run) has never run on
a GPU. This check generates one seed's foveated image (1024 px, acuity s = 1, 6 deg right of the
centre at 1024 px; three quarters across at any size) and its full-resolution twin on the device, times them (median of ``--repeats`` after a
warm-up), makes the same two images on the CPU and records how far apart they are (uint8
levels; the kernels differ, so a few levels are expected, a broken stage shows as tens). Writes a
JSON record and a PNG: the device's foveated image, its twin, and the CPU's foveated image.

    python benchmarks/device/default_on_cuda.py --json OUT.json --png OUT.png        # on the GPU
    python benchmarks/device/default_on_cuda.py --json OUT.json --png OUT.png --size 256  # dry run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from generator.arg_types import output_file, output_file_like, positive_int  # noqa: E402
from generator.atomic import write_atomic  # noqa: E402
from generator.geometry import StimulusGeometry, default_display  # noqa: E402
from generator.layout import LayoutSpec  # noqa: E402
from generator.loading import load_generator  # noqa: E402

SEED = 3


def _generate(generator, geometry, *, full: bool):
    width, height = geometry.image_width_px, geometry.image_height_px
    gaze = None if full else (0.75 * width, 0.5 * height)  # 6 deg right of the centre at 1024 px
    spec = LayoutSpec(mode="full") if full else LayoutSpec(mode="acuity", strength=1.0)
    return generator.generate(seed=SEED, geometry=geometry, gaze_px=gaze, spec=spec)


def _timed(generator, geometry, *, full: bool, repeats: int):
    """(last generation, median seconds end to end) after one warm-up."""
    _generate(generator, geometry, full=full)
    seconds, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = _generate(generator, geometry, full=full)
        seconds.append(time.perf_counter() - start)
    return out, statistics.median(seconds)


def _difference(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return {
        "mean_abs": float(d.mean()),
        "p99_abs": float(np.percentile(d, 99)),
        "max": int(d.max()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", required=True, type=output_file)
    parser.add_argument("--png", required=True, type=output_file_like("out.png"))
    parser.add_argument(
        "--size", type=positive_int, default=1024, help="image side, px (default 1024)"
    )
    parser.add_argument("--repeats", type=positive_int, default=3)
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    geometry = StimulusGeometry(
        display=default_display(), image_width_px=args.size, image_height_px=args.size
    )
    on_device = load_generator("default", device=device)
    fov, fov_s = _timed(on_device, geometry, full=False, repeats=args.repeats)
    twin, twin_s = _timed(on_device, geometry, full=True, repeats=args.repeats)
    on_cpu = load_generator("default", device="cpu")
    cpu_fov = _generate(on_cpu, geometry, full=False)
    cpu_twin = _generate(on_cpu, geometry, full=True)
    record = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "model": on_device.model_id,
        "resolution": args.size,
        "seed": SEED,
        "tokens_foveated": fov.tokens,
        "tokens_full": fov.tokens_full,
        "seconds_foveated_median": fov_s,
        "seconds_full_median": twin_s,
        "speedup": twin_s / fov_s,
        "repeats": args.repeats,
        "foveated_vs_cpu_levels": _difference(fov.image, cpu_fov.image),
        "full_vs_cpu_levels": _difference(twin.image, cpu_twin.image),
        "command": "python benchmarks/device/default_on_cuda.py " + " ".join(argv or sys.argv[1:]),
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(args.json), json.dumps(record, indent=2))
    print(json.dumps(record), flush=True)
    Image.fromarray(np.concatenate([fov.image, twin.image, cpu_fov.image], axis=1)).save(args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
