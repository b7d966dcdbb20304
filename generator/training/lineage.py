"""Which training a set of weights has had. A run that starts from shipped weights (base:
``--init``, post-training: ``--init-lora``, beside a ``default.json``) keeps that model's record of
the same stage as ``previous``, so the model card counts every run, oldest first.

Training takes the record when the run starts (and keeps it in its checkpoint): the shipped
weights may be replaced before the run is exported, for instance by an earlier snapshot of the same
run that was exported and then resumed."""

from __future__ import annotations

import json
from pathlib import Path


def starting_record(config: dict, stage: str) -> dict:
    """The record (``default.json``'s ``stage`` entry: ``base`` or ``foveated``) of the shipped
    weights that a run with this ``config`` (``TrainConfig`` as a dict) starts from; ``{}`` if it
    starts from scratch or from weights without a record."""
    from generator.models.default import CARD_FILE

    init = config.get("init" if stage == "base" else "init_lora")
    if not init:
        return {}
    sidecar = Path(init).parent / CARD_FILE
    if not sidecar.is_file():
        return {}
    record = json.loads(sidecar.read_text()).get(stage) or {}
    if (record.get("config") or {}).get("out") == config.get("out"):
        # The shipped weights are a snapshot of this very run (exported, then resumed): the run
        # continued from what that snapshot continued from.
        record = record.get("previous") or {}
    return record


def run_record(run_dir: Path, stage: str) -> dict:
    """A run's ``log.json`` with ``previous`` set; runs logged before training took the record
    at start have it looked up now."""
    path = Path(run_dir) / "log.json"
    log = json.loads(path.read_text()) if path.is_file() else {}
    if "previous" not in log:
        previous = starting_record(log.get("config") or {}, stage)
        if previous:
            log["previous"] = previous
    elif not log["previous"]:
        del log["previous"]
    return log


def lineage(log: dict) -> list[dict]:
    """A stage's record and the records it continued from, oldest first."""
    chain = []
    while log:
        chain.append(log)
        log = log.get("previous") or {}
    return chain[::-1]
