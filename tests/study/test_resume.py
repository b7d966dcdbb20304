"""kill -9 in the middle of a simulated session, then ``fovea simulate --resume``: no trial lost or
duplicated, and each staircase's sequence of levels identical to an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from study.simulate import simulate
from tests.study.conftest import small_protocol_dict, write_toml

pytestmark = [pytest.mark.display, pytest.mark.slow]
SEED = 5


def _simulate(protocol, data, *extra):
    return [
        sys.executable,
        "-m",
        "fovea_cli",
        "simulate",
        str(protocol),
        "--participants",
        "1",
        "--data",
        str(data),
        "--seed",
        str(SEED),
        "--quiet",
        *extra,
    ]


def _rows(data):
    (path,) = data.glob("sub-*/ses-*/beh/*_beh.tsv")
    return pd.read_csv(path, sep="\t", na_values="n/a", keep_default_na=False)


def _count_rows(data) -> int:
    paths = list(data.glob("sub-*/ses-*/beh/*_beh.tsv"))
    if not paths:
        return 0
    return max(0, paths[0].read_text().count("\n") - 1)


def _per_track(rows):
    """Each staircase's (level, correct) sequence over its answered trials.

    A staircase's levels depend only on its own answered trials.
    """
    responded = rows[rows["fixation_break"] == 0]
    return {
        track: list(zip(group["level"], group["correct"], strict=True))
        for track, group in responded.groupby("track", sort=True)
    }


def test_kill_at_a_random_trial_then_resume_matches_an_uninterrupted_run(virtual_x, tmp_path):
    protocol = write_toml(
        small_protocol_dict(method="staircase", trials=12, break_prob=0.15, blinks=False),
        tmp_path / "p.toml",
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    whole = tmp_path / "whole"
    # The uninterrupted reference runs in this process (the same code as the CLI's).
    (result,) = simulate(protocol=protocol, participants=1, data_dir=whole, seed=SEED, quiet=True)
    assert result.completed
    reference = _rows(whole)

    kill_after = int(np.random.default_rng(SEED).integers(2, len(reference) - 3))
    print("seed", SEED, "kill after", kill_after, "of", len(reference), "rows")
    cut = tmp_path / "cut"
    process = subprocess.Popen(
        _simulate(protocol, cut), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 600
    while _count_rows(cut) < kill_after and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the session ended before it could be killed"
    killed_rows = _count_rows(cut)
    assert kill_after <= killed_rows < len(reference)
    (killed_file,) = cut.glob("sub-*/ses-*/beh/*_beh.tsv")
    before = killed_file.read_text()

    again = subprocess.run(
        _simulate(protocol, cut), env=env, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 2 and "already exists" in again.stderr  # never overwritten
    resumed = subprocess.run(
        _simulate(protocol, cut, "--resume"), env=env, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stdout
    rows = _rows(cut)

    assert rows["trial"].tolist() == list(range(1, len(rows) + 1))  # nothing lost, nothing twice
    assert rows["onset_s"].dropna().is_monotonic_increasing  # the session's time line continues
    assert killed_file.read_text().startswith(before)  # logged trials kept as they were
    assert _per_track(rows) == _per_track(reference)
    assert sum(rows["fixation_break"] == 0) == 12
    # The whole trial sequence, fixation breaks included, is the uninterrupted run's: the
    # simulated participant's randomness is keyed to (seed, trial). (Without blinks: whether a
    # blink late in a break hides it depends on the simulated clock, which follows real time
    # while a trial waits for its images; see small_protocol_dict.)
    columns = ["trial", "condition", "level", "seed", "fixation_break", "correct"]
    pd.testing.assert_frame_equal(rows[columns], reference[columns])
