"""Teacher pairs for consistency post-training: (seed, class) -> the base model's full-resolution
generation of that seed.

Consistency post-training (``train consistency``) fits the foveated model to these pairs: for any
layout, its tokens at noise ``pack(noise(seed))`` should flow to ``pack(teacher image)``. That is
rectified-flow "reflow" restricted to the layout's tokens, and it targets exactly what
``fovea bench quality`` scores: the foveated image of a seed against the full-resolution image of
the same seed. The noise is not stored: ``FoveatedGenerator.noise_tokens`` rebuilds it from the
seed (one full-resolution draw per seed).

    fovea train teacher --out runs/teacher-256.npz --crop-px 256 --time-budget-s 900
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

#: Teacher seeds start here, away from the quality benchmark's seeds (0, 1, ...).
FIRST_SEED = 100_000


def generate_pairs(
    *,
    out: Path,
    crop_px: int,
    count: int,
    time_budget_s: float,
    steps: int | None = None,
    first_seed: int = FIRST_SEED,
    weights_dir: Path | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> dict:
    """Generate up to ``count`` teacher images (or as many as fit the budget) and save them.

    Returns:
        ``{"count", "seconds", "crop_px", "steps"}``; the file holds ``seeds`` (int64),
        ``classes`` (int64), ``images`` ((N, H, W, 3) uint8) and ``steps``.
    """
    import torch
    from tqdm.auto import tqdm

    from generator.geometry import StimulusGeometry, default_display
    from generator.layout import LayoutSpec
    from generator.models.default import load_default_generator

    gen = load_default_generator(variant="base", weights_dir=weights_dir, device=device)
    n_classes = len(gen.encoder.config.classes)
    geometry = StimulusGeometry(
        display=default_display(), image_width_px=crop_px, image_height_px=crop_px
    )
    seeds, classes, images = [], [], []
    start = time.perf_counter()
    bar = tqdm(total=count, desc=f"teacher {crop_px}px", disable=not progress)
    per_image_s = 0.0
    with torch.no_grad():
        for i in range(count):
            if time.perf_counter() - start + per_image_s > time_budget_s:
                break
            seed = first_seed + i
            cls = i % n_classes
            t0 = time.perf_counter()
            result = gen.generate(
                seed=seed,
                geometry=geometry,
                gaze_px=None,
                spec=LayoutSpec(mode="full"),
                condition=cls,
                steps=steps,
            )
            per_image_s = time.perf_counter() - t0
            seeds.append(seed)
            classes.append(cls)
            images.append(result.image)
            bar.update(1)
    bar.close()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    used_steps = int(steps or gen.steps)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(
        tmp,
        seeds=np.asarray(seeds, dtype=np.int64),
        classes=np.asarray(classes, dtype=np.int64),
        images=np.stack(images) if images else np.zeros((0, crop_px, crop_px, 3), np.uint8),
        steps=np.asarray(used_steps),
    )
    tmp.replace(out)
    return {
        "count": len(seeds),
        "seconds": time.perf_counter() - start,
        "crop_px": crop_px,
        "steps": used_steps,
    }


class TeacherPairs:
    """Teacher pairs from one or more ``.npz`` files (one crop size each), as training batches.

    Each seed's noise is drawn once (on the CPU, as the generator draws it) and kept on the
    training device, up to ``noise_cache_bytes``: redrawing 1024 px noise for every pair of
    every step would cost a GPU step many times over."""

    def __init__(
        self,
        paths: list[str | Path],
        *,
        weights: list[float] | None = None,
        noise_cache_bytes: int = 4 << 30,
    ):
        self.noise_cache: dict[tuple[int, int, int], object] = {}
        self.noise_cache_bytes = noise_cache_bytes
        self._cached_bytes = 0
        self.sets = []
        for i, path in enumerate(paths):
            with np.load(path) as data:
                if len(data["seeds"]) == 0:
                    continue
                self.sets.append(
                    {
                        "weight": float(weights[i]) if weights else float(len(data["seeds"])),
                        "seeds": data["seeds"].copy(),
                        "classes": data["classes"].copy(),
                        "images": data["images"].copy(),
                    }
                )
        if not self.sets:
            from generator.errors import FoveaError

            raise FoveaError(f"no teacher pairs in {', '.join(map(str, paths))}")

    def __len__(self) -> int:
        return sum(len(s["seeds"]) for s in self.sets)

    def batch(self, *, rng: np.random.Generator, count: int, device):
        """``count`` pairs of one crop size: clean images (B, 3, H, W) in [-1, 1], the seeds'
        noise (B, 3, H, W), classes (B,) and the crop size."""
        import torch

        weights = np.array([s["weight"] for s in self.sets], dtype=float)
        chosen = self.sets[int(rng.choice(len(self.sets), p=weights / weights.sum()))]
        idx = rng.choice(len(chosen["seeds"]), size=count, replace=count > len(chosen["seeds"]))
        images = torch.from_numpy(chosen["images"][idx]).permute(0, 3, 1, 2).float() / 127.5 - 1
        h, w = images.shape[2:]
        noise = torch.cat([self._noise(int(seed), h, w, device) for seed in chosen["seeds"][idx]])
        classes = torch.from_numpy(chosen["classes"][idx])
        return images.to(device), noise, classes.to(device), int(h)

    def _noise(self, seed: int, h: int, w: int, device):
        """(1, 3, h, w) noise of ``seed`` on ``device`` (cached while the cache has room)."""
        import torch

        cached = self.noise_cache.get((seed, h, w))
        if cached is not None:
            return cached
        noise = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(seed)).to(device)
        size = noise.numel() * noise.element_size()
        if self._cached_bytes + size <= self.noise_cache_bytes:
            self.noise_cache[(seed, h, w)] = noise
            self._cached_bytes += size
        return noise
