"""Missed generation deadlines: the trial is re-queued, a cached stimulus stands in, or (after
repeated misses) the image is shown late; every case is flagged in beh.tsv."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from protocol import load_protocol
from study.session import SessionConfig, run_session
from tests.study.conftest import small_protocol_dict, write_toml

pytestmark = pytest.mark.display
SEED = 4


def _session(tmp_path, *, on_miss: str, max_misses: int = 2):
    data = small_protocol_dict(method="constant", trials=2)
    data["conditions"][0]["levels"] = [1.0, 2.0]
    data["procedure"]["constant"] = {"repeats": 1}
    # No speculative start: a speculation that finished before the gaze was measured is on time
    # (latency 0), and whether it has finished by then depends on the machine's load.
    data["generation"].update(
        deadline_s=1e-4,
        on_deadline_miss=on_miss,
        max_deadline_misses=max_misses,
        speculative=False,
    )
    loaded = load_protocol(write_toml(data, tmp_path / f"{on_miss}.toml"))
    config = SessionConfig(
        loaded=loaded,
        data_dir=tmp_path / on_miss,
        participant="sim01",
        tracker="sim",
        observer="parametric",
        seed=SEED,
        simulated_clock=True,
        quiet=True,
    )
    result = run_session(config)
    rows = pd.read_csv(result.paths.beh_tsv, sep="\t", na_values="n/a", keep_default_na=False)
    print(
        rows[
            [
                "trial",
                "level",
                "attempt",
                "deadline_missed",
                "cached_stimulus",
                "abort_reason",
                "correct",
            ]
        ].to_string()
    )
    return result, rows


def test_deadline_misses_requeue_then_show_late(virtual_x, tmp_path):
    result, rows = _session(tmp_path, on_miss="requeue")
    assert result.completed
    assert (rows["deadline_missed"] == 1).all()  # an impossible deadline: every presentation misses
    first = rows[rows["attempt"] == 1]
    assert (first["abort_reason"] == "deadline").all() and first["correct"].isna().all()
    late = rows[rows["attempt"] == 2]
    assert len(late) == 2 and late["correct"].notna().all() and (late["cached_stimulus"] == 0).all()
    timing = json.loads(result.paths.timing_json.read_text())
    assert timing["deadline_misses"] == len(rows)


def test_deadline_miss_uses_a_cached_stimulus_from_an_earlier_presentation(virtual_x, tmp_path):
    # The late result of an earlier presentation must have finished before a later one misses
    # its deadline; on a loaded machine that can take more than one re-presentation, so allow
    # several before a trial would be shown late without a cache.
    result, rows = _session(tmp_path, on_miss="cached", max_misses=8)
    assert result.completed
    shown = rows[rows["correct"].notna()]
    assert len(shown) == 2
    # the first presentation has nothing cached yet; a later one uses its late result
    assert (rows[rows["attempt"] == 1]["abort_reason"] == "deadline").all()
    assert (shown["cached_stimulus"] == 1).all() and (shown["tokens"] > 0).all()
    # where each stand-in was made: within cache_gaze_tolerance_deg of the measured gaze
    offset = np.hypot(
        shown["stand_in_gaze_x_deg"] - shown["gaze_x_deg"],
        shown["stand_in_gaze_y_deg"] - shown["gaze_y_deg"],
    )
    protocol = json.loads(result.paths.beh_json.read_text())["protocol"]
    assert offset.notna().all()
    assert (offset <= protocol["generation"]["cache_gaze_tolerance_deg"] + 1e-9).all()
    assert rows.loc[rows["cached_stimulus"] == 0, "stand_in_gaze_x_deg"].isna().all()
