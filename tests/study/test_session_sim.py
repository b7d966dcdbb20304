"""A simulated session end to end through the real PsychoPy window (virtual display), the tiny
generator and the simulated tracker: data files, re-queued fixation breaks, screenshots."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from generator.errors import FoveaError
from protocol import load_protocol
from protocol.session_data import PINNED_COLUMNS
from study.session import SessionConfig, run_session
from study.session_display import window_size_px
from tests.study.conftest import simulated_session, small_protocol_dict, write_toml

pytestmark = pytest.mark.display
SEED = 11


@pytest.fixture(scope="module")
def session(virtual_x, tmp_path_factory):
    """One simulated session with many fixation breaks (probability 0.35) and screenshots."""
    root = tmp_path_factory.mktemp("sim")
    data = small_protocol_dict(method="staircase", trials=6, break_prob=0.35)
    protocol_path = write_toml(data, root / "small.toml")
    loaded = load_protocol(protocol_path)
    print("seed", SEED)
    config = SessionConfig(
        loaded=loaded,
        data_dir=root / "data",
        participant="sim01",
        session="1",
        tracker="sim",
        observer="parametric",
        seed=SEED,
        simulated_clock=True,
        screenshots_dir=root / "shots",
        quiet=True,
    )
    result = run_session(config)
    frame = pd.read_csv(result.paths.beh_tsv, sep="\t", na_values="n/a", keep_default_na=False)
    return {"root": root, "config": config, "result": result, "rows": frame, "loaded": loaded}


def test_session_completes_with_pinned_columns_and_contiguous_trials(session):
    rows, result = session["rows"], session["result"]
    assert result.completed and result.status == "completed"
    assert list(rows.columns[: len(PINNED_COLUMNS)]) == list(PINNED_COLUMNS)
    assert rows["trial"].tolist() == list(range(1, len(rows) + 1))
    responded = rows[rows["fixation_break"] == 0]
    assert len(responded) == 6  # trials_per_condition, split over two staircases
    assert set(responded["correct"]) <= {0, 1}
    assert (
        (responded["response"] == responded["interval_foveated"]) == (responded["correct"] == 1)
    ).all()
    assert (responded["tokens"] < responded["tokens_full"]).all()
    assert responded["gen_latency_s"].notna().all() and responded["onset_s"].is_monotonic_increasing
    assert np.allclose(responded["fixation_x_deg"], 3.0)
    # The tiny class model takes no scenes: n/a; the reference is the full-resolution twin.
    assert rows["scene"].isna().all() and (rows["reference"] == "generated").all()
    # the measured gaze at generation lies within the fixation tolerance of the target
    assert (np.hypot(rows["gaze_x_deg"] - 3.0, rows["gaze_y_deg"]) <= 1.5).all()


def test_fixation_breaks_are_logged_and_their_trials_requeued(session):
    rows = session["rows"]
    breaks = rows[rows["fixation_break"] == 1]
    print(
        rows[
            ["trial", "track", "level", "seed", "attempt", "fixation_break", "correct"]
        ].to_string()
    )
    assert len(breaks) >= 1, "seed should give at least one break at probability 0.35"
    assert breaks["response"].isna().all() and breaks["correct"].isna().all()
    assert (breaks["abort_reason"] == "fixation_break").all()
    for _, broken in breaks.iterrows():
        later = rows[(rows["trial"] > broken["trial"]) & (rows["track"] == broken["track"])].iloc[0]
        # the same plan again: same level and seed, one more attempt; its interval order is
        # drawn again (Scheduler._new_interval), so it may differ
        assert (later["level"], later["seed"]) == (broken["level"], broken["seed"])
        assert later["attempt"] == broken["attempt"] + 1 and later["interval_foveated"] in (1, 2)


def test_sidecars_gaze_and_timing_report(session):
    paths = session["result"].paths
    sidecar = json.loads(paths.beh_json.read_text())
    assert sidecar["completed"] is True and sidecar["protocol_sha256"] == session["loaded"].sha256
    assert (
        sidecar["session_seed"] == SEED
        and sidecar["session_observer"] == "parametric"
        and sidecar["tracker"] == "sim"
    )
    assert "edf_name" not in sidecar["runs"][0]  # no EDF, none named
    assert sidecar["patch_px"] == 16 and sidecar["image_size_px"] == [128, 128]
    assert sidecar["calibration"] and sidecar["true_thresholds"] == {"acuity_right3": 1.0}
    assert set(sidecar["procedure_estimates"]) == {"acuity_right3/s1", "acuity_right3/s2"}
    physio = json.loads(paths.physio_json.read_text())
    for key in (
        "SamplingFrequency",
        "StartTime",
        "Columns",
        "RecordedEye",
        "SampleCoordinateSystem",
        "ScreenSize",
        "ScreenResolution",
        "ScreenDistance",
    ):
        assert key in physio
    with gzip.open(paths.physio_tsv_gz, "rt") as f:
        gaze = pd.read_csv(f, sep="\t", header=None, names=physio["Columns"], na_values="n/a")
    assert len(gaze) > 100 and set(gaze["trial"].dropna().astype(int)) == set(
        session["rows"]["trial"]
    )
    assert gaze["timestamp"].is_monotonic_increasing
    timing = json.loads(paths.timing_json.read_text())
    assert timing["trials"] == len(session["rows"])
    assert timing["generation_latency_s"]["count"] == int(
        (session["rows"]["gen_latency_s"].notna()).sum()
    )
    run = timing["runs"][-1]
    assert run["frame_interval_ms"]["count"] > 50 and run["gaze_to_flip_ms"]["max"] < 1000 / 60
    assert timing["fixation_breaks"] == int(session["rows"]["fixation_break"].sum())
    by_phase = timing["dropped_frames_by_phase"]
    assert by_phase["dropped_frames_interval1"] == int(
        session["rows"]["dropped_frames_interval1"].sum()
    )
    assert timing["trials_requeued_for_dropped_frames"] == 0  # simulations do not re-queue


def test_an_existing_session_is_never_overwritten(session):
    with pytest.raises(FoveaError, match="already exists"):
        run_session(session["config"])
    config = session["config"]
    config.resume = True
    try:
        result = run_session(config)
    finally:
        config.resume = False
    assert result.status == "already complete"


def _shot(session, name):
    from PIL import Image

    return np.asarray(Image.open(session["root"] / "shots" / f"{name}.png").convert("RGB")).astype(
        int
    )


def _expected_centre_px(session, x_deg, y_deg):
    """Window pixel (column, row) of a point given in degrees from the screen centre."""
    p = session["loaded"].protocol
    width, height = window_size_px(p)
    display = p.display.geometry()
    sx, sy = display.deg_to_screen_px(x_deg, y_deg)
    return float(sx) - display.width_px / 2 + width / 2, float(
        sy
    ) - display.height_px / 2 + height / 2


def test_fixation_screen_shows_the_mark_at_the_target(session):
    shot = _shot(session, "fixation")
    grey = shot[0, 0]
    dark = np.argwhere(shot.sum(axis=2) < 60)
    assert len(dark) > 20
    row, col = dark.mean(axis=0)
    ex, ey = _expected_centre_px(session, 3.0, 0.0)
    assert abs(col - ex) < 2 and abs(row - ey) < 2, (col, row, ex, ey)
    mark_px = 0.4 * session["loaded"].protocol.display.geometry().pixels_per_degree
    assert np.ptp(dark[:, 1]) == pytest.approx(mark_px, abs=3)
    assert abs(int(grey[0]) - 128) <= 1  # background_gray 0.5


def test_stimulus_screen_shows_the_generated_image_at_the_centre_1_to_1(session):
    from generator import LayoutSpec, StimulusGeometry, load_generator
    from protocol.levels import layout_spec

    p = session["loaded"].protocol
    rows = session["rows"]
    first = rows[rows["onset_s"].notna()].iloc[0]  # the first trial that reached interval 1
    geometry = StimulusGeometry(
        display=p.display.geometry(), image_width_px=128, image_height_px=128
    )
    gen = load_generator("tiny")
    if first["interval_foveated"] == 1:
        gaze_px = tuple(
            float(v) for v in geometry.deg_to_image_px(first["gaze_x_deg"], first["gaze_y_deg"])
        )
        spec = layout_spec(condition=p.conditions[0], level=float(first["level"]))
    else:
        gaze_px, spec = None, LayoutSpec(mode="full")
    expected = gen.generate(
        seed=int(first["seed"]),
        geometry=geometry,
        gaze_px=gaze_px,
        spec=spec,
        condition=int(first["conditioning"]),
    ).image
    shot = _shot(session, "interval1")
    cx, cy = _expected_centre_px(session, 0.0, 0.0)
    top, left = int(round(cy - 64)), int(round(cx - 64))
    region = shot[top : top + 128, left : left + 128]
    diff = np.abs(region - expected.astype(int))
    assert diff.mean() < 1.0 and diff.max() <= 3, (diff.mean(), diff.max())
    # outside the image: background
    assert np.abs(shot[top - 3, left : left + 128] - 128).max() <= 1


def test_response_screen_shows_prompt_and_mark(session):
    shot = _shot(session, "response")
    dark = shot.sum(axis=2) < 60
    ex, ey = _expected_centre_px(session, 3.0, 0.0)
    ppd = session["loaded"].protocol.display.geometry().pixels_per_degree
    text_row = int(round(ey - 3.0 * ppd))
    assert dark[text_row - 15 : text_row + 15].sum() > 50  # the prompt, 3 deg above the centre
    assert dark[int(ey) - 5 : int(ey) + 5, int(ex) - 5 : int(ex) + 5].sum() > 10  # the mark
    mask = _shot(session, "isi")
    cx, cy = _expected_centre_px(session, 0.0, 0.0)
    patch = mask[int(cy) - 32 : int(cy) + 32, int(cx) - 32 : int(cx) + 32]
    assert patch.std() > 30  # the noise mask


@pytest.mark.slow
def test_session_with_the_process_service_and_speculative_start(virtual_x, tmp_path):
    """The default generation backend: its own process, speculation at the fixation target."""
    data = small_protocol_dict(method="staircase", trials=4, break_prob=0.0)
    data["generation"]["service"] = "process"
    data["generation"]["speculative"] = True
    data["generation"]["speculation_tolerance_deg"] = 1.5  # the fixation tolerance
    loaded = load_protocol(write_toml(data, tmp_path / "process.toml"))
    print("seed", SEED)
    config = SessionConfig(
        loaded=loaded,
        data_dir=tmp_path / "data",
        participant="proc01",
        session="1",
        tracker="sim",
        observer="parametric",
        seed=SEED,
        simulated_clock=True,
        quiet=True,
    )
    result = run_session(config)
    rows = pd.read_csv(result.paths.beh_tsv, sep="\t", na_values="n/a", keep_default_na=False)
    responded = rows[rows["fixation_break"] == 0]
    assert result.completed and len(responded) == 4
    assert responded["tokens"].notna().all() and responded["gen_latency_s"].notna().all()
    # The simulated eye lands within a fraction of a degree of the target: speculation is kept.
    assert responded["speculation_kept"].sum() >= 1


def test_every_planned_fixation_break_reaches_the_data_at_many_frames_per_flip(
    virtual_x, tmp_path, monkeypatch
):
    """50 simulated frames per flip (0.83 s) and a 0.1 s stimulus and ISI: the trial reads the
    gaze on three flips (interval 1, the mask, interval 2). The simulated participant's break
    is fitted to them (``study.trackers.sim.break_timing``), so each attempt on which it plans
    to break is a fixation break in ``beh.tsv``, and no other is. A 0.2-0.5 s break used to fall
    between two flips: about one in seven reached the data, and a protocol's
    ``sim_fixation_break_prob = 0.05`` gave breaks on well under 1 % of the trials."""
    from study.trackers.sim import SimulatedTracker

    planned: dict[int, bool] = {}
    trial_start = SimulatedTracker.trial_start

    def noting_the_plan(self, *, trial, variables):
        trial_start(self, trial=trial, variables=variables)
        planned[trial] = self.break_log[-1].planned

    monkeypatch.setattr(SimulatedTracker, "trial_start", noting_the_plan)
    data = small_protocol_dict(method="staircase", trials=6, break_prob=0.8, blinks=False)
    data["simulation"]["speed"] = 50
    data["timing"].update(stimulus_duration_s=0.1, isi_s=0.1, mask_duration_s=0.05)
    config = SessionConfig(
        loaded=load_protocol(write_toml(data, tmp_path / "p.toml")),
        data_dir=tmp_path / "data",
        participant="sim01",
        tracker="sim",
        observer="parametric",
        seed=SEED,
        simulated_clock=True,
        quiet=True,
    )
    result = run_session(config)
    rows = pd.read_csv(result.paths.beh_tsv, sep="\t", na_values="n/a", keep_default_na=False)
    rows["planned"] = rows["trial"].map(planned)
    print(rows[["trial", "attempt", "planned", "abort_reason"]].to_string())
    assert result.completed and rows["planned"].sum() >= 4
    broke = rows["abort_reason"] == "fixation_break"
    assert (broke == rows["planned"]).all()


def test_a_simulated_session_that_aborts_every_trial_stops(virtual_x, tmp_path):
    """A simulated participant who breaks fixation on every trial (``sim_fixation_break_prob``
    1): each plan is given up after ``max_attempts`` and replaced by a new one, so the session
    never ended. It stops after ``[procedure] max_aborts_in_a_row`` aborts in a row, saying why,
    with every trial logged and the run's end records written."""
    data = small_protocol_dict(method="staircase", trials=6, break_prob=1.0, blinks=False)
    data["procedure"].update(max_attempts=2, max_aborts_in_a_row=5)
    lines: list[str] = []
    protocol = write_toml(data, tmp_path / "p.toml")
    config = simulated_session(protocol, tmp_path / "data", seed=SEED, quiet=False)
    result = run_session(config, log=lines.append)
    finding = "5 trials in a row were aborted (fixation_break 5)"
    assert not result.completed and result.status == f"stopped: {finding}"
    assert any(finding in line and "--resume" in line for line in lines), lines
    rows = pd.read_csv(result.paths.beh_tsv, sep="\t", na_values="n/a", keep_default_na=False)
    print(rows[["trial", "track", "attempt", "given_up", "abort_reason", "response"]].to_string())
    print("\n".join(lines))
    assert len(rows) == 5 and (rows["abort_reason"] == "fixation_break").all()
    assert rows["attempt"].max() == 2 and rows["given_up"].sum() == 2  # two attempts a plan
    sidecar = json.loads(result.paths.beh_json.read_text())
    assert sidecar["runs"][-1]["status"] == result.status
