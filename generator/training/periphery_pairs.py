"""Training pairs for the periphery stage (:mod:`generator.models.periphery`), made by the model
it will finish: for random crops of *training* photographs (never held-out ones), the
full-resolution twin from the complete pipeline, and foveated images of the same scene and seed,
at random gaze points and acuity strengths, taken before the detail stage (the refined
transformer image, which is what the periphery stage sees at inference).

One ``pair_NNN.npz`` per twin in the output folder (``twin`` (H, W, 3) uint8, ``seed``,
``foveated`` (n, H, W, 3) uint8, ``levels`` (n, grid_h, grid_w) uint8 token levels per cell,
``strength`` (n,), ``gaze_px`` (n, 2)) and ``pairs.json`` (the settings and the model). The detail
noise is not stored: it is the seed's (:func:`generator.models.detail.detail_noise`). Building
is resumable: files already there are kept.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from generator.atomic import open_atomic, write_atomic
from generator.errors import FoveaError

PAIRS_FILE = "pairs.json"


@dataclass
class PairSettings:
    """What :func:`build_pairs` makes. Sizes in pixels.

    Attributes:
        count: twins (photograph crops), each with ``per_twin`` foveated images.
        resolution: image side.
        strength_range: acuity strengths are drawn log-uniformly from it.
        gaze_margin: gaze points are drawn uniformly at least this fraction of the side from the
            image's edges.
        seed: the crops, gazes and strengths derive from it; twin i has generation seed
            ``seed * 100_000 + i``.
        data: packed photographs (their training split is used).
        weights_dir: the model's weights (None: the shipped ones).
    """

    count: int = 48
    per_twin: int = 4
    resolution: int = 1024
    strength_range: tuple[float, float] = (0.25, 2.0)
    gaze_margin: float = 0.1
    seed: int = 0
    data: str = "generator/data/photos-1024.npz"
    weights_dir: str | None = None


def build_pairs(settings: PairSettings, out_dir: Path, *, progress: bool = True) -> Path:
    """Write the pairs into ``out_dir`` (resuming); returns the folder."""
    import torch

    from generator.data.images import load_bank
    from generator.geometry import StimulusGeometry, default_display
    from generator.models.weights_io import load_default_generator
    from generator.progress import progress_bar
    from generator.weights_hash import weights_sha256

    out_dir = Path(out_dir)
    wdir = Path(settings.weights_dir) if settings.weights_dir else None
    if wdir is not None:
        _check_weights_dir(wdir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_settings(settings, out_dir)
    full = load_default_generator(variant="foveated", weights_dir=wdir)
    if full.encoder.detail is None:
        raise FoveaError("periphery pairs need a model with a detail stage (default-detail)")
    weights = weights_sha256(full)
    sampling = _sampling(full)
    _check_same_model(out_dir, weights, sampling)
    bare = _refined_only(full)
    bank = load_bank(source=Path(settings.data), split="train")
    res = settings.resolution
    geometry = StimulusGeometry(display=default_display(), image_width_px=res, image_height_px=res)
    write_atomic(
        out_dir / PAIRS_FILE,
        json.dumps(
            {
                **asdict(settings),
                "model": full.model_id,
                "weights_sha256": weights,
                **sampling,
                "photos": len(bank),
            },
            indent=1,
        ),
    )
    for i in progress_bar(range(settings.count), desc="pairs", unit="pair", enabled=progress):
        path = out_dir / f"pair_{i:03d}.npz"
        if not path.is_file():
            with torch.no_grad():
                _write_pair(path, i, settings, full=full, bare=bare, bank=bank, geometry=geometry)
    return out_dir


def _write_pair(path: Path, i: int, settings: PairSettings, *, full, bare, bank, geometry) -> None:
    """Pair ``i``: its twin and ``per_twin`` refined foveated images, written atomically."""
    from generator.layout import LayoutSpec

    res = settings.resolution
    rng = np.random.default_rng([settings.seed, i])
    scene, source = _training_scene(bank, rng, res, full.scene_factor)
    seed = settings.seed * 100_000 + i
    twin = full.generate(
        seed=seed, geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"), scene=scene
    )
    record = {"foveated": [], "levels": [], "strength": [], "gaze_px": []}
    lo, hi = np.log(settings.strength_range[0]), np.log(settings.strength_range[1])
    m = settings.gaze_margin
    for _ in range(settings.per_twin):
        gaze = tuple(float(v) for v in rng.uniform(m, 1 - m, 2) * res)
        strength = float(np.exp(rng.uniform(lo, hi)))
        spec = LayoutSpec(mode="acuity", strength=strength)
        out = bare.generate(seed=seed, geometry=geometry, gaze_px=gaze, spec=spec, scene=scene)
        record["foveated"].append(out.image)
        record["levels"].append(out.layout.level_map().astype(np.uint8))
        record["strength"].append(strength)
        record["gaze_px"].append(gaze)
    with open_atomic(path) as f:  # a pair is there whole or not at all
        np.savez(
            f,
            twin=twin.image,
            seed=seed,
            source=source,
            **{k: np.asarray(v) for k, v in record.items()},
        )


def _check_weights_dir(wdir: Path) -> None:
    """Refuse a ``--weights`` folder without the files the pairs are made by (the base, its
    foveated adapter, the detail stage) in one line that says so for this command (the loader's
    own messages suggest its --model and variant options, which ``fovea train pairs`` has not)."""
    from generator.models.weights_io import BASE_FILE, DETAIL_FILE, LORA_FILE

    missing = [name for name in (BASE_FILE, LORA_FILE, DETAIL_FILE) if not (wdir / name).is_file()]
    if missing:
        raise FoveaError(
            f"--weights {wdir} has no {', '.join(missing)}: the pairs are made by the foveated "
            "model with its detail stage; give a weights folder that `fovea train export "
            "--out` wrote with --foveated (or a copy of the shipped one)"
        )


def _check_settings(settings: PairSettings, out_dir: Path) -> None:
    """Refuse settings that cannot work, or that differ from those of the pairs already there."""
    if settings.count < 1 or settings.per_twin < 1:
        raise FoveaError("--count and --per-twin must be at least 1")
    if settings.resolution % 64:
        raise FoveaError(f"--resolution {settings.resolution} must be a multiple of 64")
    lo, hi = settings.strength_range
    if not 0 < lo <= hi:
        raise FoveaError(f"strength range {lo}..{hi}: need 0 < low <= high")
    old = out_dir / PAIRS_FILE
    if old.is_file():
        before = {k: v for k, v in json.loads(old.read_text()).items() if k in asdict(settings)}
        now = json.loads(json.dumps(asdict(settings)))
        changed = sorted(k for k in now if k != "count" and before.get(k) != now[k])
        if changed:
            raise FoveaError(
                f"{out_dir} holds pairs made with other settings ({', '.join(changed)}); "
                "use another --out"
            )


def _sampling(gen) -> dict:
    """The sampler settings the twins and foveated images depend on beside the weights (an
    export's ``--sampler/--steps/--shift/--detail-steps/--detail-shift`` change only these)."""
    detail = gen.encoder.detail.config
    return {
        "sampler": gen.sampler,
        "steps": gen.steps,
        "shift": gen.shift,
        "detail_steps": detail.steps,
        "detail_shift": detail.shift,
    }


def _check_same_model(out_dir: Path, weights: str, sampling: dict) -> None:
    """Refuse to add pairs made by other weights or other sampler settings to those there (the
    model exported again since: the periphery stage would learn from two models' images). Pairs
    recorded without a sampler were made with ``euler``; settings not recorded are not checked."""
    old = out_dir / PAIRS_FILE
    if not old.is_file():
        return
    record = json.loads(old.read_text())
    before = record.get("weights_sha256")
    if before is None:
        return
    recorded = {"sampler": "euler", **{k: v for k, v in record.items() if k in sampling}}
    changed = sorted(k for k in recorded if recorded[k] != sampling[k])
    if before != weights or changed:
        what = ", ".join(["weights"] * (before != weights) + changed)
        raise FoveaError(
            f"{out_dir} holds pairs made by other weights or another sampler ({what} differ: "
            "the model was exported again since?); use another --out"
        )


def _refined_only(gen):
    """The same model without its detail and periphery stages: outputs are the refined
    transformer images that the periphery stage is given."""
    from generator.models.default import SceneEncoder
    from generator.pipeline import FoveatedGenerator

    return FoveatedGenerator(
        denoiser=gen.denoiser,
        encoder=SceneEncoder(gen.encoder.model),
        codec=gen.codec,
        model_id=gen.model_id,
        steps=gen.steps,
        shift=gen.shift,
        sampler=gen.sampler,
    )


def _training_scene(bank, rng: np.random.Generator, res: int, factor: int):
    """A random crop (position, size, flip) of a random training photograph, as a scene."""
    from generator.scene_crop import apply_crop, pick_crop
    from generator.scene_sources import scene_from_original

    k = int(rng.integers(len(bank)))
    image = bank.images[k]
    crop = pick_crop(*image.shape[1:], width_px=res, height_px=res, rng=rng)
    original = apply_crop(image, crop, width_px=res, height_px=res)
    source = f"train:{bank.entries[k]['id']}#{crop.describe()}"
    return scene_from_original(original, factor=factor, source=source), source


@dataclass
class PairSet:
    """Loaded pairs: per twin, its images and the seed's detail noise, as CPU tensors."""

    twins: list  # (3, H, W) uint8
    noises: list  # (3, H, W) float16
    foveated: list  # (n, 3, H, W) uint8
    levels: list  # (n, grid_h, grid_w) uint8

    def __len__(self) -> int:
        return len(self.twins)


def load_pairs(folder: Path) -> PairSet:
    """The pairs in ``folder`` (written by :func:`build_pairs`)."""
    import torch

    from generator.models.detail import detail_noise

    files = sorted(Path(folder).glob("pair_*.npz"))
    files = [f for f in files if not f.name.endswith(".tmp.npz")]
    if not files:
        raise FoveaError(f"no periphery pairs in {folder}; make them with `fovea train pairs`")
    pairs = PairSet([], [], [], [])
    for f in files:
        with np.load(f) as d:
            twin = torch.from_numpy(d["twin"]).permute(2, 0, 1).contiguous()
            h, w = twin.shape[-2:]
            pairs.twins.append(twin)
            pairs.noises.append(detail_noise(int(d["seed"]), height=h, width=w)[0].half())
            pairs.foveated.append(torch.from_numpy(d["foveated"]).permute(0, 3, 1, 2).contiguous())
            pairs.levels.append(torch.from_numpy(d["levels"]))
    return pairs


def check_crops_fit(pairs: PairSet, crop_px: list[int], folder: Path) -> None:
    """Refuse crop sides larger than the smallest pair's images (``fovea train pairs
    --resolution``): no crop of that side can be drawn from them."""
    smallest = min(min(twin.shape[-2:]) for twin in pairs.twins)
    too_large = [px for px in crop_px if px > smallest]
    if too_large:
        raise FoveaError(
            f"--crop-px {' '.join(map(str, too_large))} is larger than the pairs in {folder} "
            f"({smallest} px images, their `fovea train pairs --resolution`); give --crop-px "
            f"{smallest} or less"
        )


def pair_crops(pairs: PairSet, *, count: int, crop_px: int, rng):
    """A batch of crops of ``crop_px``, each drawn to hold at least 30 % coarse-token pixels
    where it can (ten tries), at any pixel offset (so the net cannot learn where the token grid
    is from its own 4 px blocks): (noise, image, levels, twin, origin), float32, images in
    [-1, 1], levels (B, 1, crop, crop), origin (B, 2) the crops' top-left (row, column)."""
    import torch

    out = {"noise": [], "image": [], "levels": [], "twin": [], "origin": []}
    for _ in range(count):
        i = int(rng.integers(len(pairs)))
        j = int(rng.integers(len(pairs.foveated[i])))
        cells = pairs.levels[i][j]
        h, w = pairs.twins[i].shape[-2:]
        token_px = h // cells.shape[0]
        levels = cells.float().repeat_interleave(token_px, 0).repeat_interleave(token_px, 1)
        for _ in range(10):
            r, c = int(rng.integers(h - crop_px + 1)), int(rng.integers(w - crop_px + 1))
            lv = levels[r : r + crop_px, c : c + crop_px]
            if (lv >= 2).float().mean() >= 0.3:
                break
        rows, cols = slice(r, r + crop_px), slice(c, c + crop_px)
        out["noise"].append(pairs.noises[i][:, rows, cols].float())
        out["image"].append(pairs.foveated[i][j][:, rows, cols].float() / 127.5 - 1)
        out["levels"].append(lv[None])
        out["twin"].append(pairs.twins[i][:, rows, cols].float() / 127.5 - 1)
        out["origin"].append(torch.tensor([r, c]))
    return tuple(torch.stack(out[k]) for k in ("noise", "image", "levels", "twin", "origin"))
