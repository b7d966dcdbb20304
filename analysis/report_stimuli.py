"""The report's stimulus examples: what a participant saw at each condition's group threshold.

For each condition one trial is picked (the analysed trial whose level is nearest the group
threshold, or the median tested level when there is no group threshold) and its pair is shown
at that level: the foveated image with the fixation marked, its full-resolution twin and the
outline of the token layout. The images come from the session's saved trial images when it has
them, else they are regenerated from what the session recorded (model and sampler steps of its
generator run, seed, scene, measured gaze, geometry: ``protocol.geometry.geometry_from_record``)
with the generator (on the report's ``--device``, the CPU by default), and cached in
``figures/stimulus_cache/`` so a second report reuses them.
A session whose model cannot be loaded here, or that made no images (simulated data), gets a
note instead of a picture.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.report_analysis import Analysis
from generator.atomic import save_image_atomic, write_atomic
from protocol.session_data import session_field

CACHE_DIR_NAME = "stimulus_cache"
TILE_PX = 360  # each image's side in the example figure
CAPTION_PX = 44


@dataclass
class StimulusExample:
    """One condition's example pair, or why there is none.

    Attributes:
        condition: the condition.
        level: the level shown (NaN when no trial could be picked).
        level_source: how ``level`` was chosen (``group threshold`` or ``median tested level``).
        participant, session, trial, seed: the trial whose seed, scene and gaze were used
            (``seed`` None when the trial recorded none: only its saved images can be shown).
        gaze_deg: (x, y) the gaze the foveated image was made for, deg from the centre: the
            measured one, else the trial's fixation target, else the condition's (sidecar),
            else the screen centre.
        source: where the images came from (regenerated with which model, or saved images).
        tokens, tokens_full: the foveated layout's tokens and the full grid's.
        png: the figure (foveated | twin | layout), or None with ``note`` saying why.
        note: caveats, or why there is no picture ("" when none).
    """

    condition: str
    level: float = math.nan
    level_source: str = ""
    participant: str = ""
    session: str = ""
    trial: int = 0
    seed: int | None = None
    gaze_deg: tuple[float, float] = (math.nan, math.nan)
    source: str = ""
    tokens: int = 0
    tokens_full: int = 0
    png: bytes | None = None
    note: str = ""

    @property
    def figure_name(self) -> str:
        return f"stimuli_{self.condition}"


def stimulus_examples(a: Analysis, *, cache_dir: Path, device: str = "cpu") -> None:
    """Fills ``a.stimulus_examples`` (one per condition) and their figures in ``a.pngs``;
    images that must be regenerated are made on ``device``."""
    models: dict[tuple, object] = {}
    a.stimulus_examples = []
    for c in a.conditions:
        example = _example(a, c, cache_dir=cache_dir, models=models, device=device)
        a.stimulus_examples.append(example)
        if example.png is not None:
            a.pngs[example.figure_name] = example.png


def _example(
    a: Analysis, condition: str, *, cache_dir: Path, models: dict, device: str
) -> StimulusExample:
    example = StimulusExample(condition=condition)
    pick = _pick_trial(a, condition)
    if pick is None:
        example.note = "no analysed trial to take a seed, scene and gaze from"
        return example
    row, session, level, level_source = pick
    example.level, example.level_source = level, level_source
    example.participant, example.session = str(row["participant"]), str(row["session"])
    example.trial = int(row["trial"])
    example.seed = _finite_int(row.get("seed"))
    example.gaze_deg = _gaze_deg(row, a.design.condition_table(condition))
    saved = _saved_images(session, example.trial)
    if saved is not None:
        example.level_source = f"the shown trial nearest the {level_source} {level:.3g}"
        example.level = float(row["level"])
        example.source = "the session's saved images"
        foveated, twin = (_read_png(path) for path in saved)
        layout, gaze_px = _layout(session.sidecar, example, patch_px=None)
        example.png = _figure(example, foveated, twin, layout, gaze_px)
        return example
    run = _generator_run(session.sidecar)
    if run is None:
        example.note = (
            f"{session.label} recorded no generator (simulated data: no images were made), "
            "so there is no stimulus to show"
        )
        return example
    if example.seed is None:
        example.note = (
            f"no analysed trial of {condition} recorded its seed (seed n/a), so its images "
            "cannot be regenerated"
        )
        return example
    try:
        images = _regenerate(
            a, session, row, example, run, cache_dir=cache_dir, models=models, device=device
        )
    except _NoExample as why:
        example.note = str(why)
        return example
    example.png = _figure(example, *images)
    return example


class _NoExample(Exception):
    """Why an example cannot be shown (the message is the report's note)."""


def _finite_int(value) -> int | None:
    """``value`` as an int, or None for a missing one (n/a: NaN or None)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) else None


def _gaze_deg(row, condition: dict) -> tuple[float, float]:
    """The gaze to make the example for: the trial's measured gaze, else its fixation target,
    else the condition's ``fixation_deg``, else the screen centre (each pair only when whole)."""
    target = condition.get("fixation_deg")
    pairs = (
        (row.get("gaze_x_deg"), row.get("gaze_y_deg")),
        (row.get("fixation_x_deg"), row.get("fixation_y_deg")),
        tuple(target) if isinstance(target, list | tuple) and len(target) == 2 else (None, None),
    )
    for x, y in pairs:
        try:
            pair = (float(x), float(y))
        except (TypeError, ValueError):
            continue
        if all(math.isfinite(v) for v in pair):
            return pair
    return (0.0, 0.0)


def _pick_trial(a: Analysis, condition: str):
    """(row, session, level, level_source) of the trial to show, or None."""
    trials = a.analysed_human if a.analysed_human is not None and len(a.analysed_human) else a.human
    if trials is None:
        return None
    t = trials[(trials["condition"] == condition) & np.isfinite(trials["level"])]
    t = t[t["level"] > 0] if a.log_axis else t
    if "seed" in t and t["seed"].notna().any():
        t = t[t["seed"].notna()]  # a trial without a seed (n/a) gives no image to regenerate
    if t.empty:
        return None
    group = a.group[a.group["condition"] == condition] if a.group is not None else pd.DataFrame()
    threshold = float(group["threshold"].iloc[0]) if len(group) else math.nan
    if math.isfinite(threshold) and threshold > 0:
        level, source = threshold, "group threshold"
    else:
        level, source = float(np.median(t["level"])), "median tested level"
    distance = np.abs(np.log(t["level"] / level)) if a.log_axis else np.abs(t["level"] - level)
    row = t.loc[distance.idxmin()]
    for s in a.dataset.sessions:
        if s.participant == str(row["participant"]) and s.session == str(row["session"]):
            return row, s, level, source
    return None


# The images a session saved per trial (study/trial/dataviewer.py): beside the EDF copies in
# DATA/sourcedata/sub-<p>/ses-<s>/eyetrack/images/, named trial-0007_foveated.png / _full.png.
SAVED_IMAGE_NAME = "trial-{trial:04d}_{kind}.png"


def _saved_images(session, trial: int) -> tuple[Path, Path] | None:
    """(foveated, full) PNGs the session saved for ``trial``, or None when it saved none."""
    data_dir = session.beh_path.parents[3]  # DATA/sub-<p>/ses-<s>/beh/<file>
    source = data_dir / "sourcedata" / f"sub-{session.participant}" / f"ses-{session.session}"
    if not source.is_dir():
        return None
    found = []
    for kind in ("foveated", "full"):
        name = SAVED_IMAGE_NAME.format(trial=int(trial), kind=kind)
        matches = sorted(source.rglob(name))
        if not matches:
            return None
        found.append(matches[0])
    return found[0], found[1]


def _layout(sidecar: dict, example: StimulusExample, *, patch_px: int | None):
    """(the example's token layout at its level and gaze, gaze in image px, by the token rules
    the session generated with: ``analysis.design.sidecar_token_rules``); fills ``tokens``."""
    from analysis.design import sidecar_token_rules
    from generator.token_rules import token_rules_layout
    from protocol.geometry import geometry_from_record

    geometry = geometry_from_record(sidecar)
    gaze_px = tuple(float(v) for v in geometry.deg_to_image_px(*example.gaze_deg))
    patch = int(patch_px or sidecar.get("patch_px") or 16)
    layout = token_rules_layout(
        sidecar_token_rules(sidecar),
        geometry=geometry,
        gaze_px=gaze_px,
        spec=_layout_spec(sidecar, example),
        patch_px=patch,
    )
    example.tokens, example.tokens_full = int(layout.num_tokens), int(layout.num_tokens_full)
    return layout, gaze_px


def _layout_spec(sidecar: dict, example: StimulusExample):
    """The condition's ``LayoutSpec`` at the example's level (the sidecar's condition table)."""
    from analysis.tokens import layout_spec_for

    table = (sidecar.get("conditions") or {}).get(example.condition) or {}
    return layout_spec_for(condition=table, level=example.level)


def _generator_run(sidecar: dict) -> dict | None:
    """The generator record of the session's last run that made images (None: none did)."""
    for run in reversed((sidecar or {}).get("runs") or []):
        generator = run.get("generator") if isinstance(run, dict) else None
        if isinstance(generator, dict) and generator.get("model"):
            return generator
    return None


def _regenerate(a, session, row, example, run, *, cache_dir: Path, models: dict, device: str):
    """(foveated, twin, layout) of the example, from the cache or generated on ``device``;
    fills ``example.source``, ``tokens`` and ``note``."""
    from generator.layout import LayoutSpec
    from protocol.geometry import geometry_from_record

    sidecar = session.sidecar
    geometry = geometry_from_record(sidecar)
    spec = _layout_spec(sidecar, example)
    gaze_px = tuple(float(v) for v in geometry.deg_to_image_px(*example.gaze_deg))
    model, steps, lora = str(run["model"]), run.get("steps"), run.get("lora")
    decode = str(run.get("decode") or "full")
    dtype = run.get("dtype")  # None: sessions from before it was recorded ran in float32
    scenes = sidecar.get("scenes") or {}
    reference = str(session_field(sidecar, "reference") or "generated")
    key_record = {
        "model": model,
        "lora": lora,
        "decode": decode,
        "dtype": dtype,
        "device": device,
        "weights_sha256": run.get("weights_sha256"),
        "steps": steps,
        "seed": example.seed,
        "scene": str(row.get("scene", "")),
        "scenes": scenes.get("spec"),
        "reference": reference,
        "geometry": {k: sidecar.get(k) for k in ("display", "image_size_px", "image_origin_px")},
        "gaze_px": [round(v, 2) for v in gaze_px],
        "spec": repr(spec),
    }
    key = hashlib.sha256(json.dumps(key_record, sort_keys=True).encode()).hexdigest()[:20]
    paths = {name: cache_dir / f"{key}_{name}.png" for name in ("foveated", "twin")}
    info_path = cache_dir / f"{key}.json"
    example.source = f"regenerated with model {model!r}" + (
        "" if device == "cpu" else f" on {device}"
    )
    if all(p.is_file() for p in paths.values()) and info_path.is_file():
        info = json.loads(info_path.read_text(encoding="utf-8"))
        foveated, twin = (_read_png(paths[n]) for n in ("foveated", "twin"))
        example.note = info.get("note", "")
        patch_px = int(info["token_px"])
        example.source += " (cached)"
    else:
        generator = _load_model(model, models, lora=lora, decode=decode, dtype=dtype, device=device)
        scene = _scene(generator, scenes, geometry, example, row)
        made = generator.generate(
            seed=example.seed, geometry=geometry, gaze_px=gaze_px, spec=spec, steps=steps,
            scene=scene,
        )  # fmt: skip
        foveated = made.image
        if reference == "original" and scene is not None and scene.original is not None:
            twin = np.asarray(scene.original)
        else:
            twin = generator.generate(
                seed=example.seed, geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"),
                steps=steps, scene=scene,
            ).image  # fmt: skip
        notes = (example.note, _weights_note(generator, run), _device_note(run, device))
        example.note = "; ".join(n for n in notes if n)
        patch_px = int(generator.token_px)
        cache_dir.mkdir(parents=True, exist_ok=True)
        for name, image in (("foveated", foveated), ("twin", twin)):
            _write_png(paths[name], image)
        info = {**key_record, "token_px": patch_px, "note": example.note}
        write_atomic(info_path, json.dumps(info, indent=1) + "\n")
    layout, gaze_px = _layout(sidecar, example, patch_px=patch_px)
    return foveated, twin, layout, gaze_px


def _load_model(
    model: str,
    models: dict,
    *,
    lora: str | None = None,
    decode: str = "full",
    dtype=None,
    device: str = "cpu",
):
    """The generator for ``model`` with the session's LoRA, decode and dtype (``[stimulus]
    lora``, ``decode``, ``dtype``; loaded once per report, on ``device``); _NoExample when it
    cannot be."""
    key = (model, lora, decode, dtype, device)
    if key not in models:
        from generator.loading import load_generator

        try:
            models[key] = load_generator(
                model, lora=lora, decode=decode, dtype=dtype, device=device
            )
        except Exception as error:  # noqa: BLE001 - any failure becomes the report's note
            with_lora = f" with LoRA {lora!r}" if lora else ""
            models[key] = _NoExample(
                f"the sessions used model {model!r}{with_lora}, which cannot be loaded here "
                f"({type(error).__name__}: {error}); no example shown"
            )
    if isinstance(models[key], _NoExample):
        raise models[key]
    return models[key]


def _scene(generator, scenes: dict, geometry, example: StimulusExample, row):
    """The trial's scene (scene models), checked against the hash the trial recorded."""
    if not generator.takes_scene:
        return None
    from generator.scene_sources import scene_source

    spec = scenes.get("spec") or "pool"
    try:
        scene = scene_source(spec).scene(
            seed=example.seed,
            width_px=geometry.image_width_px,
            height_px=geometry.image_height_px,
            factor=generator.scene_factor,
        )
    except Exception as error:  # noqa: BLE001 - a folder of another machine, a bad file
        raise _NoExample(
            f"the sessions' scenes ({spec}) cannot be read here ({error}); no example shown"
        ) from None
    recorded = str(row.get("scene", "") or "")
    if len(recorded) == 64 and recorded != scene.sha256:
        example.note = (
            f"the scene made here from seed {example.seed} differs from the one the trial "
            "recorded (another scene source or pool): the picture shows the scene made here"
        )
    return scene


def _weights_note(generator, run: dict) -> str:
    """A note when the session recorded other weights than the model loaded here."""
    recorded = run.get("weights_sha256")
    if not recorded:
        return ""
    from generator.weights_hash import weights_sha256

    if weights_sha256(generator) == recorded:
        return ""
    return (
        f"model {run['model']!r} here has other weights than the session's "
        f"({str(recorded)[:12]}...): the images approximate what was shown"
    )


def _device_note(run: dict, device: str) -> str:
    """A note when the sessions generated on another kind of device than the report does
    (their kernels round differently, so the pixels can differ slightly)."""
    recorded = run.get("device")
    if not recorded or str(recorded).split(":")[0] == device.split(":")[0]:
        return ""
    return (
        f"the sessions generated on {recorded!r}, these images on {device!r}: kernels differ, "
        "so pixels can differ slightly from what was shown"
    )


def foveated_caption(shape: tuple[int, ...], gaze_px) -> str:
    """The foveated tile's caption: a condition may fixate beside the image (all periphery),
    where no mark can show, and the caption then says so instead of "fixation marked"."""
    height, width = shape[:2]
    on_image = 0 <= gaze_px[0] <= width and 0 <= gaze_px[1] <= height
    return "foveated, fixation marked" if on_image else "foveated; fixation off the image"


def _figure(example: StimulusExample, foveated, twin, layout, gaze_px) -> bytes:
    """foveated (fixation marked) | full-resolution twin | token layout outline, captioned."""
    from PIL import Image, ImageDraw

    from generator.draw import draw_layout, mark_fixation

    tiles = [
        (
            foveated_caption(np.asarray(foveated).shape, gaze_px),
            mark_fixation(np.asarray(foveated), gaze_px),
        ),
        ("full-resolution twin", Image.fromarray(np.asarray(twin))),
        (
            f"token layout: {example.tokens} of {example.tokens_full} tokens",
            draw_layout(layout, image=None),
        ),
    ]
    sheet = Image.new("RGB", (TILE_PX * len(tiles), TILE_PX + CAPTION_PX), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font(15)
    title = (
        f"{example.condition}: level {example.level:.3g} ({example.level_source}); "
        f"seed {'n/a' if example.seed is None else example.seed}, "
        f"sub-{example.participant} trial {example.trial}"
    )
    draw.text((6, 3), title, fill="black", font=font)
    for i, (caption, image) in enumerate(tiles):
        tile = image.convert("RGB").resize((TILE_PX, TILE_PX), Image.Resampling.LANCZOS)
        sheet.paste(tile, (i * TILE_PX, CAPTION_PX))
        draw.text((i * TILE_PX + 6, 23), caption, fill="black", font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default()


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _write_png(path: Path, image) -> None:
    from PIL import Image

    save_image_atomic(path, Image.fromarray(np.asarray(image, dtype=np.uint8)))
