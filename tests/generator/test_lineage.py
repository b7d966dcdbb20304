"""Training lineage: a run continued from shipped weights counts the runs before it, once each."""

from __future__ import annotations

import json

from generator.models.weights_io import CARD_FILE
from generator.training.lineage import lineage, run_record, starting_record


def _ship(weights, record: dict) -> str:
    weights.mkdir(parents=True, exist_ok=True)
    (weights / CARD_FILE).write_text(json.dumps({"foveated": record}))
    return str(weights / "default-foveated-lora.safetensors")


def _log(run, config: dict, steps: int, **extra) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "log.json").write_text(json.dumps({"config": config, "steps": steps, **extra}))


def test_a_run_started_from_shipped_weights_records_them_as_previous(tmp_path):
    first = {"config": {"out": "runs/a"}, "steps": 5}
    lora = _ship(tmp_path / "w", first)
    _log(tmp_path / "b", {"out": "runs/b", "init_lora": lora}, 7)
    log = run_record(tmp_path / "b", "foveated")
    assert [r["steps"] for r in lineage(log)] == [5, 7]


def test_a_resumed_run_whose_snapshot_is_shipped_is_not_counted_twice(tmp_path):
    # A run logged before runs kept their starting record: it started from a 5-step adapter, was
    # exported at 10 steps (its out folder spelled another way), then resumed to 20 steps.
    out = tmp_path / "runs" / "c"
    snapshot = {
        "config": {"out": str(tmp_path / "runs" / "x" / ".." / "c")},
        "steps": 10,
        "loss_first50": 0.25,
        "previous": {"config": {}, "steps": 5},
    }
    lora = _ship(tmp_path / "w", snapshot)
    config = {"out": str(out), "init_lora": lora}
    _log(out, config, 20, loss_first50=0.25)
    assert [r["steps"] for r in lineage(run_record(out, "foveated"))] == [5, 20]
    # A fresh run in the same folder (other first losses) started from that snapshot: all three.
    _log(out, config, 4, loss_first50=0.125)
    assert [r["steps"] for r in lineage(run_record(out, "foveated"))] == [5, 10, 4]
    assert starting_record(config, "foveated")["steps"] == 10


def test_the_record_taken_at_the_start_wins_over_what_is_shipped_at_export(tmp_path):
    lora = _ship(tmp_path / "w", {"config": {"out": "runs/x"}, "steps": 99})
    _log(tmp_path / "d", {"out": "runs/d", "init_lora": lora}, 3, previous={"steps": 2})
    assert [r["steps"] for r in lineage(run_record(tmp_path / "d", "foveated"))] == [2, 3]
    _log(tmp_path / "e", {"out": "runs/e"}, 4, previous={})
    assert "previous" not in run_record(tmp_path / "e", "foveated")
