"""Which training a set of weights has had. A run that starts from shipped weights (base:
``--init``, post-training: ``--init-lora``, beside a ``default.json``) keeps that model's record of
the same stage as ``previous``, so the model card counts every run, oldest first.

Training takes the record when the run starts and keeps it in its checkpoint: the shipped weights
may be replaced before the run is exported, for instance by an earlier snapshot of the same run
that was exported and then resumed. Runs logged before training did this have the record looked up
at export; :func:`without_own_snapshot` then keeps such a snapshot from being counted twice."""

from __future__ import annotations

import json
from pathlib import Path


def starting_record(config: dict, stage: str) -> dict:
    """The record (``default.json``'s ``stage`` entry: ``base``, ``foveated`` or ``detail``) of the shipped
    weights that a run with this ``config`` (``TrainConfig`` as a dict) starts from; ``{}`` if it
    starts from scratch or from weights without a record."""
    from generator.models.weights_io import CARD_FILE

    init = config.get("init_lora" if stage == "foveated" else "init")
    if not init:
        return {}
    sidecar = Path(init).parent / CARD_FILE
    if not sidecar.is_file():
        return {}
    return read_json(sidecar, f"the record beside --init {init}").get(stage) or {}


def base_sha256(path: Path) -> str:
    """SHA-256 of a base model file's tensors (name, shape and values rounded to float16, as
    the export ships them), not of its metadata: a post-training run records the base it was
    trained on, and the run's fp32 base and the fp16 base exported from it compare equal."""
    import hashlib

    import torch
    from safetensors.torch import load_file

    digest = hashlib.sha256()
    for name, tensor in sorted(load_file(str(path)).items()):
        digest.update(f"{name}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.to(torch.float16).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def without_own_snapshot(record: dict, run: dict) -> dict:
    """``record``, or what it continued from if it is an earlier snapshot of ``run`` itself (same
    output folder, the same mean loss of the first 50 steps, no more steps): a run exported, then
    resumed."""
    snap_config, run_config = record.get("config") or {}, run.get("config") or {}
    same_out = bool(snap_config.get("out")) and _same_path(
        snap_config["out"], run_config.get("out")
    )
    first = run.get("loss_first50")
    same_start = first is not None and record.get("loss_first50") == first
    if same_out and same_start and (record.get("steps") or 0) <= (run.get("steps") or 0):
        return record.get("previous") or {}
    return record


def run_record(run_dir: Path, stage: str) -> dict:
    """A run's ``log.json`` with ``previous`` set (``previous`` left out when there is none)."""
    path = Path(run_dir) / "log.json"
    log = read_json(path, "the run's log") if path.is_file() else {}
    if "previous" not in log:  # logged before training took the record at start
        log["previous"] = without_own_snapshot(starting_record(log.get("config") or {}, stage), log)
    if not log["previous"]:
        del log["previous"]
    return log


def lineage(log: dict) -> list[dict]:
    """A stage's record and the records it continued from, oldest first."""
    chain = []
    while log:
        chain.append(log)
        log = log.get("previous") or {}
    return chain[::-1]


def _same_path(a: str, b: str | None) -> bool:
    return b is not None and Path(a).resolve() == Path(b).resolve()


def read_json(path: Path, what: str):
    """``path``'s JSON; a missing or unreadable file is a FoveaError naming ``what`` it is."""
    from generator.errors import FoveaError

    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FoveaError(f"{path} not found ({what})") from None
    except (OSError, json.JSONDecodeError) as error:
        raise FoveaError(f"{path} is not readable JSON ({what}): {error}") from None
