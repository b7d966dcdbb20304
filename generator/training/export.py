"""Turn training outputs into the shipped weights: fp16 base + fp16 LoRA + fp16 detail and
periphery stages + a JSON record + the card.

    fovea train export --base runs/base --foveated runs/foveated --detail runs/detail \
        --periphery runs/periphery [--out generator/models/weights]
    python -m generator.training.export --refresh-card generator/models/weights \\
        --quality-summary q_summary.json --conditioning-comparison conditioning.json

The record (``default.json``) keeps each stage's training runs, the data summary, and the
measured figures given so far (``--quality-summary``: a ``fovea bench quality`` summary;
``--conditioning-comparison``: a JSON list of ``{variant, steps, wall_s, heldout_loss, step_s}``),
so a later ``--refresh-card`` or ``--note`` does not drop them. ``MODEL_CARD.md`` is written from
the record (:mod:`generator.training.card`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path

from generator.arg_types import positive_float, positive_int
from generator.atomic import write_atomic
from generator.errors import FoveaError, is_path_error, path_error_message, safetensors_errors
from generator.sampler_names import SAMPLERS
from generator.training.card import model_card
from generator.training.config import STAGES
from generator.training.lineage import read_json as _read_json
from generator.training.lineage import run_record

MAX_SHIPPED_BYTES = 25 * 1024 * 1024
REPO = Path(__file__).resolve().parents[2]


def export_lock(out_dir: Path) -> Path:
    """The lock an export into ``out_dir`` holds (in the temporary folder, so that no file is
    left beside the weights): two exports into one folder would share its staging copy."""
    import hashlib
    import tempfile

    key = hashlib.sha256(str(Path(out_dir).resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"fovea-export-{key}.lock"


def export_weights(*, out_dir: Path, **stages) -> dict:
    """Export into ``out_dir`` as one set (:func:`_export_into` says what is written): the set is
    written into a staging copy of ``out_dir`` beside it and moved into place only once every
    file is written and the size check passed, so a failure (a missing run, a full disk, weights
    over 25 MB) leaves ``out_dir`` as it was: never a new base beside an old adapter. One export
    into a folder at a time (:func:`export_lock`)."""
    from generator.process_lock import ProcessLock

    what = f"the weights folder {out_dir}"
    with ProcessLock(export_lock(out_dir), what=what, then="run this export again"):
        return _export_weights(out_dir=out_dir, **stages)


def _export_weights(*, out_dir: Path, **stages) -> dict:
    """:func:`export_weights` with its lock held."""
    from generator.models.weights_io import BASE_FILE, CARD_FILE

    out_dir = Path(out_dir)
    if stages.get("base_dir") is None and not all(
        (out_dir / name).is_file() for name in (BASE_FILE, CARD_FILE)
    ):  # checked here: the staging copy's name would stand in the message
        raise FoveaError(
            f"{out_dir} has no shipped base weights to keep ({BASE_FILE} and {CARD_FILE}); give "
            "--base, or --out a copy of the shipped weights folder"
        )
    for run_dir in (stages.get(f"{stage}_dir") for stage in STAGES):
        if run_dir is not None:
            _refuse_a_running_run(Path(run_dir))
    out_dir.parent.mkdir(parents=True, exist_ok=True)  # a file in the way: named, not staging
    staging = out_dir.parent / f".{out_dir.name}.export"
    shutil.rmtree(staging, ignore_errors=True)  # left by an export that was killed
    if out_dir.is_dir():
        shutil.copytree(out_dir, staging, copy_function=shutil.copy2)
    else:
        staging.mkdir(parents=True)
    try:
        before = {p.name for p in staging.iterdir() if p.is_file()}
        record = _export_into(out_dir=staging, **stages)
        total = sum(p.stat().st_size for p in staging.glob("*.safetensors"))
        record["shipped_bytes"] = total
        if total > MAX_SHIPPED_BYTES:
            raise FoveaError(
                f"the exported weights would total {total / 1e6:.1f} MB, over 25 MB; "
                f"{out_dir} is unchanged"
            )
        _move_into_place(staging, out_dir, removed=before - {p.name for p in staging.iterdir()})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return record


def _refuse_a_running_run(run_dir: Path) -> None:
    """Refuse a run folder that a training is writing now (its ``train.lock`` is held): its
    weights move on and its log is written when it ends, which the checks below would call a
    run that was stopped."""
    from generator.process_lock import ProcessLock
    from generator.training.train import LOCK_FILE

    if not (run_dir / LOCK_FILE).is_file():
        return
    probe = ProcessLock(run_dir / LOCK_FILE, what=str(run_dir))
    try:
        probe.acquire()
    except FoveaError:
        raise FoveaError(
            f"{run_dir} is being trained now (its {LOCK_FILE} is held by a running fovea train): "
            "export it when that training has ended"
        ) from None
    except OSError:  # not ours to open (a read-only copy): no training writes there
        return
    probe.release()


def _move_into_place(staging: Path, out_dir: Path, *, removed: set[str]) -> None:
    """Each file of ``staging`` renamed over its namesake in ``out_dir`` (each rename atomic, all
    of them within milliseconds), then the files the export removed (a stale adapter) deleted."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(staging.iterdir()):
        if path.is_file():
            os.replace(path, out_dir / path.name)
    for name in removed:
        (out_dir / name).unlink(missing_ok=True)


def _export_into(
    *,
    base_dir: Path | None,
    foveated_dir: Path | None,
    out_dir: Path,
    quality_summary: dict | list | None = None,
    quality_source: str | None = None,
    conditioning: list[dict] | None = None,
    notes: list[str] | None = None,
    sampler: dict | None = None,
    detail_dir: Path | None = None,
    detail_sampler: dict | None = None,
    periphery_dir: Path | None = None,
) -> dict:
    """Write ``default-base.safetensors``, ``default-foveated-lora.safetensors`` (if a
    post-training run is given), ``default.json``, the loss curves and ``MODEL_CARD.md`` into
    ``out_dir``; returns the record.

    ``base_dir=None`` keeps the base weights and base record already in ``out_dir`` (a new
    post-training run on the shipped base), and its notes. ``notes`` are added to the record and
    the card. A conditioning comparison already in ``out_dir``'s record is kept unless a new one is given
    (it is a design measurement, not one of these weights); a quality summary is not.
    ``sampler`` (``steps``, ``shift``, ``sampler``) replaces the model's default sampler settings
    (stored in the weights' config; with ``base_dir=None`` in the shipped base's): an inference choice made by measurement after training.
    ``detail_dir``: a ``detail`` training run whose net becomes ``default-detail.safetensors``
    (None keeps the shipped one and its record); ``detail_sampler`` (``steps``, ``shift``)
    replaces its sampler settings likewise. ``periphery_dir``: a ``periphery`` run whose net
    becomes ``default-periphery.safetensors`` (None keeps the shipped one)."""
    from generator.models.weights_io import CARD_FILE, DETAIL_FILE, LORA_FILE, PERIPHERY_FILE

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    old = (
        _read_json(out_dir / CARD_FILE, "the shipped record")
        if (out_dir / CARD_FILE).is_file()
        else {}
    )
    model, record = _export_base(base_dir, out_dir, old=old, sampler=sampler)
    kept = (old.get("notes") or []) if base_dir is None else []  # notes on the kept base stay
    record["notes"] = kept + [n for n in notes or [] if n not in kept]
    if foveated_dir is not None:
        _export_lora(Path(foveated_dir) / "lora.safetensors", out_dir / LORA_FILE)
        record["foveated"] = _stage_record(Path(foveated_dir), "foveated")
        _check_adapter_base(Path(foveated_dir), record["foveated"], out_dir)
    elif base_dir is None and old.get("foveated") and (out_dir / LORA_FILE).is_file():
        record["foveated"] = old["foveated"]  # kept with the kept base
    else:  # a stale adapter would not match the new base; nor its loss curves the card
        (out_dir / LORA_FILE).unlink(missing_ok=True)
        (out_dir / "default-foveated-loss.png").unlink(missing_ok=True)
    record.update(
        _export_stage("detail", detail_dir, out_dir / DETAIL_FILE, old=old, sampler=detail_sampler)
    )
    record.update(_export_stage("periphery", periphery_dir, out_dir / PERIPHERY_FILE, old=old))
    record["config"] = model.config_.as_dict()
    record["parameters"] = sum(p.numel() for p in model.parameters())
    if model.refiner is not None:
        record["refiner_parameters"] = sum(p.numel() for p in model.refiner.parameters())
    if quality_summary is not None:
        record["quality"] = {"source": quality_source, "summary": quality_summary}
    comparison = conditioning if conditioning is not None else old.get("conditioning_comparison")
    if comparison:
        record["conditioning_comparison"] = comparison
    write_atomic(out_dir / CARD_FILE, json.dumps(record, indent=1))
    runs = {"base": base_dir, "foveated": foveated_dir, "detail": detail_dir}
    for stage, run in {**runs, "periphery": periphery_dir}.items():
        if run is not None:
            _loss_figure(Path(run), out_dir / f"default-{stage}-loss.png", stage)
    write_atomic(out_dir / "MODEL_CARD.md", model_card(record))
    for path in out_dir.glob("default*"):
        path.chmod(0o644)  # safetensors writes 0600; shipped files must be readable by all
    return record


def _export_base(base_dir: Path | None, out_dir: Path, *, old: dict, sampler: dict | None):
    """(the base model, the record's ``base`` and ``data``): ``base_dir``'s EMA weights written
    to ``out_dir`` in fp16 (with ``sampler`` in their config), or with ``base_dir=None`` those
    already shipped there (``sampler`` written into their config) and their ``old`` record."""
    import torch

    from generator.models.weights_io import BASE_FILE, load_model, save_weights

    if base_dir is None:
        if not (out_dir / BASE_FILE).is_file() or not old:
            raise FoveaError(f"{out_dir} has no shipped base weights to keep; give --base")
        if sampler:
            _replace_config(out_dir / BASE_FILE, sampler)
        model = load_model(out_dir / BASE_FILE)
        record = {"base": old.get("base", {}), "data": old.get("data") or {}}
        if not record["data"].get("images"):
            record["data"] = data_summary((record["base"].get("config") or {}).get("data"))
        return model, record
    model = load_model(Path(base_dir) / "model.safetensors")
    if sampler:
        model.config_ = dataclasses.replace(model.config_, **sampler)
    save_weights(model, out_dir / BASE_FILE, dtype=torch.float16, metadata={"source": "base"})
    record = {"base": _stage_record(Path(base_dir), "base")}
    record["data"] = data_summary((record["base"].get("config") or {}).get("data"))
    return model, record


def _replace_config(path: Path, sampler: dict) -> None:
    """Rewrite the config in ``path``'s safetensors metadata with ``sampler``'s settings; the
    tensors are copied bit for bit (their hash, ``generator.weights_hash``, stays)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
        state = {k: f.get_tensor(k) for k in f.keys()}
    meta["config"] = json.dumps({**json.loads(meta["config"]), **sampler})
    save_file(state, str(path), metadata=meta)


def _export_lora(lora_file: Path, shipped: Path) -> None:
    """Copy a post-training run's adapter to ``shipped`` in fp16, its metadata (``lora_scale``)
    kept."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    if not lora_file.is_file():
        raise FoveaError(f"{lora_file} not found: --foveated takes a foveated training folder")
    with safetensors_errors(lora_file, "the run's adapter"):
        with safe_open(str(lora_file), framework="pt") as f:
            meta = f.metadata() or {}
        state = {k: v.half().contiguous() for k, v in load_file(str(lora_file)).items()}
    save_file(state, str(shipped), metadata=meta)


def _export_stage(
    stage: str, run_dir: Path | None, shipped: Path, *, old: dict, sampler: dict | None = None
):
    """The record's ``<stage>``, ``<stage>_config`` and ``<stage>_parameters`` for a conv stage
    (``detail`` or ``periphery``): ``run_dir``'s net written to ``shipped`` in fp16 (with
    ``sampler`` in its config), or the shipped one kept (``{}`` when there is none)."""
    import torch

    from generator.models import weights_io

    load = getattr(weights_io, f"load_{stage}")
    save = getattr(weights_io, f"save_{stage}")
    if run_dir is not None:
        weights = Path(run_dir) / f"{stage}.safetensors"
        with safetensors_errors(weights, "the run's weights"):
            net = load(weights)
        record = _stage_record(Path(run_dir), stage)
        pairs = Path((record.get("config") or {}).get("data") or "") / "pairs.json"
        if stage == "periphery" and pairs.is_file():
            record["pairs"] = _read_json(pairs, "the pairs' record")  # what the run trained on
    elif shipped.is_file() and old.get(stage):
        net, record = load(shipped), old[stage]
    else:
        return {}
    if sampler:
        net.config = dataclasses.replace(net.config, **sampler)
    save(net, shipped, dtype=torch.float16, metadata={"source": stage})
    return {
        stage: record,
        f"{stage}_config": net.config.as_dict(),
        f"{stage}_parameters": sum(p.numel() for p in net.parameters()),
    }


def refresh_card(
    folder: Path,
    *,
    quality_summary: dict | list | None = None,
    quality_source: str | None = None,
    conditioning: list[dict] | None = None,
    notes: list[str] | None = None,
) -> Path:
    """Rewrite ``folder/MODEL_CARD.md`` from its ``default.json``, first storing what is given
    (a quality summary or conditioning comparison replaces the recorded one; notes not yet
    recorded are added). Returns the card's path."""
    from generator.models.weights_io import CARD_FILE

    folder = Path(folder)
    record = _read_json(folder / CARD_FILE, "the weights' record")
    if quality_summary is not None:
        record["quality"] = {"source": quality_source, "summary": quality_summary}
    if conditioning is not None:
        record["conditioning_comparison"] = conditioning
    if not (record.get("data") or {}).get("images"):
        record["data"] = data_summary(((record.get("base") or {}).get("config") or {}).get("data"))
    record["notes"] = list(record.get("notes") or [])
    record["notes"] += [n for n in notes or [] if n not in record["notes"]]
    write_atomic(folder / CARD_FILE, json.dumps(record, indent=1))
    write_atomic(folder / "MODEL_CARD.md", model_card(record))
    return folder / "MODEL_CARD.md"


def data_summary(path: str | None) -> dict:
    """What the training photographs were: counts by split and source, licences (from the pack's
    or cache folder's manifest; only ``path`` when it cannot be read here)."""
    from generator.data.fetch import load_manifest
    from generator.data.images import pack_manifest

    if not path:
        return {}
    found = Path(path)
    if not found.exists() and not found.is_absolute() and (REPO / found).exists():
        found = REPO / found
    try:
        manifest = pack_manifest(found) if found.suffix == ".npz" else load_manifest(found)
    except FoveaError:
        return {"path": path}
    images = manifest.get("images") or []
    splits, sources = {}, {}
    for e in images:
        splits[e.get("split")] = splits.get(e.get("split"), 0) + 1
        name = e.get("package") or e.get("source") or "unknown"
        sources[name] = sources.get(name, 0) + 1
    return {
        "path": path,
        "images": len(images),
        "splits": splits,
        "sources": sources,
        "licences": sorted({e["licence"] for e in images if e.get("licence")}),
    }


def _stage_record(run_dir: Path, stage: str) -> dict:
    """A run's record (:func:`run_record`) with the mean velocity and refiner losses of its first
    and last 50 steps (from ``losses.json``); refused when its weights are not those the log
    describes (:func:`_check_log_matches_weights`)."""
    _check_log_matches_weights(run_dir, stage)
    log = run_record(run_dir, stage)
    if log.get("steps") == 0:  # its weights are the untrained start
        raise FoveaError(
            f"{run_dir} made no training step (its time budget or deadline ran out first): "
            f"nothing to export; `fovea train {stage} --out {run_dir} --resume` with a larger "
            "--time-budget-s (and the run's other flags) trains it"
        )
    total, parts = _losses(run_dir)
    if parts:
        head, tail = parts[:50], parts[-50:]
        log["loss_parts_first50"] = [sum(p[i] for p in head) / len(head) for i in (0, 1)]
        log["loss_parts_last50"] = [sum(p[i] for p in tail) / len(tail) for i in (0, 1)]
    return log


def _check_adapter_base(run_dir: Path, log: dict, out_dir: Path) -> None:
    """Refuse an adapter whose run recorded another base than the one being shipped in
    ``out_dir`` (runs logged before they recorded it are not checked)."""
    from generator.models.weights_io import BASE_FILE
    from generator.training.lineage import base_sha256

    trained_on = log.get("base_sha256")
    if trained_on and trained_on != base_sha256(out_dir / BASE_FILE):
        init = (log.get("config") or {}).get("init")
        raise FoveaError(
            f"{run_dir} was post-trained on another base than the one exported (its --init "
            f"{init} has changed since, or --base names another run): an adapter fits only its "
            "own base; export that base, or post-train this one"
        )


def _check_log_matches_weights(run_dir: Path, stage: str) -> None:
    """Refuse a run whose weights hold another step count than its ``log.json`` (a run killed
    after a checkpoint saved newer weights, before it wrote its log): its card would state the
    older log's steps, time and losses. Weights without a step (older runs) are not checked."""
    from safetensors import safe_open

    from generator.training.checkpoint import RUN_WEIGHTS

    weights = Path(run_dir) / f"{RUN_WEIGHTS[stage]}.safetensors"
    if not weights.is_file():
        return
    with safetensors_errors(weights, "the run's weights"), safe_open(str(weights), "pt") as f:
        step = (f.metadata() or {}).get("step")
    if step is None:
        return
    log_path = Path(run_dir) / "log.json"
    logged = _read_json(log_path, "the run's log").get("steps") if log_path.is_file() else None
    if logged is not None and str(logged) == step:
        return
    fix = (
        f"`fovea train {stage} --out {run_dir} --resume --steps {step}` (with the run's other "
        "flags) writes its log without training further; without --steps it finishes the run"
    )
    if logged is None:
        raise FoveaError(
            f"{run_dir} has no log.json (the run was stopped before it wrote it): {fix}"
        )
    raise FoveaError(
        f"{weights.name} holds {step} steps, its log.json {logged} (the run was stopped after a "
        f"checkpoint, before it wrote its log): {fix}"
    )


def _losses(run_dir: Path) -> tuple[list[float], list[list[float]]]:
    """``losses.json``: {"total": [...], "parts": [[velocity, refiner], ...]} (an older run's
    plain list is its totals)."""
    path = Path(run_dir) / "losses.json"
    if not path.is_file():
        return [], []
    data = _read_json(path, "the run's losses")
    if isinstance(data, list):
        return data, []
    parts = [list(p) for p in data.get("parts") or [] if len(p) >= 2]
    return list(data.get("total") or []), parts


def _loss_figure(run_dir: Path, out: Path, stage: str) -> None:
    """The run's total / velocity / refiner curves, or its ``loss.png`` when it has no parts."""
    from generator.training.plots import plot_loss_parts

    total, parts = _losses(run_dir)
    if total:
        plot_loss_parts(total, parts, out, title=f"{stage} training loss", stage=stage)
    elif (run_dir / "loss.png").is_file():
        shutil.copyfile(run_dir / "loss.png", out)


def read_conditioning(path: Path) -> list[dict]:
    """``--conditioning-comparison``: a JSON list of records, each with a ``variant``."""
    records = _read_json(path, "the conditioning comparison")
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and "variant" in r for r in records
    ):
        raise FoveaError(
            f"{path}: the conditioning comparison must be a JSON list of records "
            "{variant, steps, wall_s, heldout_loss, step_s}"
        )
    return records


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``fovea train export`` and ``python -m generator.training.export``."""
    parser.add_argument(
        "--refresh-card",
        default=None,
        metavar="WEIGHTS_DIR",
        help="only rewrite WEIGHTS_DIR/MODEL_CARD.md from its default.json (storing what "
        "--quality-summary, --conditioning-comparison and --note give)",
    )
    parser.add_argument(
        "--base", default=None, help="base run folder (default: keep the base in --out)"
    )
    parser.add_argument("--foveated", default=None, help="foveated post-training run folder")
    parser.add_argument(
        "--detail", default=None, help="detail-stage run folder (default: keep the shipped one)"
    )
    parser.add_argument(
        "--periphery",
        default=None,
        help="periphery-stage run folder (default: keep the shipped one)",
    )
    parser.add_argument("--out", default=None, help="weights folder (default: the package's)")
    parser.add_argument(
        "--quality-summary",
        default=None,
        help="a `fovea bench quality` *_summary.json for the card's measured figures",
    )
    parser.add_argument(
        "--conditioning-comparison",
        default=None,
        metavar="PATH",
        help="JSON list of {variant, steps, wall_s, heldout_loss, step_s}: channels vs reference",
    )
    parser.add_argument("--note", action="append", default=[], help="a line for the model card")
    parser.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="the shipped default sampler steps (alone: rewrites the shipped base's config)",
    )
    parser.add_argument(
        "--shift",
        type=positive_float,
        default=None,
        help="the shipped default sampler shift (alone: as --steps)",
    )
    parser.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default=None,
        help="the shipped default sampler (generator.sampler; alone: rewrites the shipped base's "
        "config, its weights unchanged)",
    )
    parser.add_argument(
        "--detail-steps",
        type=positive_int,
        default=None,
        help="the shipped detail stage's Euler steps",
    )
    parser.add_argument(
        "--detail-shift", type=positive_float, default=None, help="the shipped detail stage's shift"
    )


def run_export(args: argparse.Namespace) -> str:
    """Carry out ``add_export_arguments``' flags; returns the line to print."""
    from generator.models.weights_io import DETAIL_FILE, PERIPHERY_FILE, WEIGHTS_DIR

    quality = (
        _read_json(args.quality_summary, "--quality-summary") if args.quality_summary else None
    )
    source = _display_path(args.quality_summary) if args.quality_summary else None
    comparison = (
        read_conditioning(args.conditioning_comparison) if args.conditioning_comparison else None
    )
    if args.refresh_card:
        card = refresh_card(
            Path(args.refresh_card),
            quality_summary=quality,
            quality_source=source,
            conditioning=comparison,
            notes=args.note,
        )
        return f"rewrote {card}"
    sampler = {
        k: v
        for k, v in (("steps", args.steps), ("shift", args.shift), ("sampler", args.sampler))
        if v is not None
    }
    detail_sampler = {
        k: v
        for k, v in (("steps", args.detail_steps), ("shift", args.detail_shift))
        if v is not None
    }
    trained = (args.base, args.foveated, args.detail, args.periphery)
    if not (any(trained) or sampler or detail_sampler):
        raise FoveaError(
            "export needs --base, --foveated, --detail and/or --periphery (training folders), "
            "sampler settings (--sampler, --steps, --shift, --detail-steps, --detail-shift), "
            "or --refresh-card DIR"
        )
    out = Path(args.out) if args.out else WEIGHTS_DIR
    if detail_sampler and not args.detail and not (out / DETAIL_FILE).is_file():
        raise FoveaError(
            f"--detail-steps/--detail-shift: {out} ships no detail stage; export one with "
            "--detail RUN_DIR"
        )
    record = export_weights(
        base_dir=Path(args.base) if args.base else None,
        foveated_dir=Path(args.foveated) if args.foveated else None,
        out_dir=out,
        quality_summary=quality,
        quality_source=source,
        conditioning=comparison,
        notes=args.note,
        sampler=sampler,
        detail_dir=Path(args.detail) if args.detail else None,
        detail_sampler=detail_sampler,
        periphery_dir=Path(args.periphery) if args.periphery else None,
    )
    done = f"exported to {out}: {record['shipped_bytes'] / 1e6:.1f} MB"
    new_transformer = args.base or args.foveated or sampler  # what the pairs are made with
    if new_transformer and not args.periphery and (out / PERIPHERY_FILE).is_file():
        done += (
            f"\nnote: the kept periphery stage ({PERIPHERY_FILE}) was trained on pairs the "
            f"previous model made; for pairs of this one: fovea train pairs --weights {out} "
            "--out PAIRS, fovea train periphery --data PAIRS --out RUN, then fovea train export "
            f"--periphery RUN --out {out}"
        )
    return done


def _display_path(path: str) -> str:
    """A path as the card shows it: relative to the repository when inside it."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator.training.export")
    add_export_arguments(parser)
    args = parser.parse_args(argv)
    try:
        print(run_export(args))
    except FoveaError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a --out that cannot be written, as fovea reports it
        if not is_path_error(error):
            raise
        print(f"error: {path_error_message(error)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
