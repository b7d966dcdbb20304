"""The session's tracker records without a window: the link-lost screen (no reconnect: Q, then
``--resume``), calibrations in the sidecar across runs, the per-run EDF names."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from study.datalog import SessionPaths
from study.session_tracker import SessionTrackerFiles, link_lost_screen
from study.trackers.base import CalibrationResult
from study.trackers.edf_text import read_edf_text
from study.trackers.emulated_host import FaultScript
from tests.study.eyelink_emulation import open_tracker, run_trial


class ScriptedPresenter:
    """Presses the scripted keys, one per shown frame (auto_advance off: an operator); a key
    the screen does not listen for is dropped, as PsychoPy's ``getKeys(keyList=...)`` does."""

    auto_advance = False

    def __init__(self, keys: list[str]) -> None:
        self._keys = list(keys)
        self.frames = 0

    def clear_keys(self) -> None:
        pass

    def draw_text(self, text: str) -> None:
        self.text = text

    def flip(self, *, phase: str) -> None:
        self.frames += 1

    def keys(self, key_list) -> list[str]:
        if not self._keys:
            return []
        key = self._keys.pop(0)
        return [key] if key in key_list else []


@pytest.mark.parametrize("end_key", ["q", "escape"])
def test_a_lost_link_offers_no_reconnect_the_operator_ends_and_resumes(tmp_path, end_key):
    """The emulated Host closes the run's EDF when the link drops (as ``_lose_link`` assumes),
    so the run never records on: R does nothing, Q or Escape ends it, the text says --resume."""
    tracker, clock = open_tracker(tmp_path, faults=FaultScript(link_lost_at_trial=2))
    tracker.start_recording()
    run_trial(tracker, clock, 1)
    tracker.trial_start(trial=2, variables={})  # the link drops here
    presenter = ScriptedPresenter(["r", "r", end_key])
    link_lost_screen(presenter, trial=1)
    assert presenter.frames == 3  # R did not end the screen
    text = presenter.text
    assert "press R" not in text and "Q" in text and "--resume" in text and "trial 1" in text
    assert not tracker.is_connected() and not tracker.is_recording()
    # Nothing after the loss reached the Host's file (the emulator's Host closed it).
    (host_file,) = tracker.host.directory.glob("*.EDF")
    assert read_edf_text(host_file).texts("TRIALID") == ["TRIALID 1", "TRIALID 2"]


def test_calibrations_of_earlier_runs_stay_and_each_run_gets_its_own_edf(tmp_path):
    paths = SessionPaths(data_dir=tmp_path, participant="01", session="1", task="t")
    earlier = {"avg_error_deg": 0.3, "max_error_deg": 0.6, "run": 1}
    sidecar = {"runs": [{"edf_name": "x"}, {}], "calibration": [earlier]}
    written = []
    files = SessionTrackerFiles(
        paths=paths,
        sidecar=sidecar,
        run_record=sidecar["runs"][-1],
        prefix="fv",
        write_sidecar=lambda: written.append(True),
        records_edf=True,
    )
    name = files.name_run()
    assert len(name) == 8 and sidecar["runs"][-1]["run"] == 2 and written
    assert sidecar["runs"][-1]["edf_name"] == name
    assert sidecar["runs"][-1]["edf_local_name"] == f"sub-01_ses-1_run-2_{name}.edf"
    sim = SimpleNamespace(name="sim", settings=SimpleNamespace(eye="right", sampling_rate_hz=500))
    files.record_calibration(
        sim, CalibrationResult(avg_error_deg=0.4, max_error_deg=float("nan"), time_s=1.0)
    )
    assert sidecar["calibration"][0] == earlier
    assert (
        sidecar["calibration"][1]["run"] == 2 and sidecar["calibration"][1]["max_error_deg"] is None
    )


def test_a_tracker_without_an_edf_names_none_in_its_run_record(tmp_path):
    """The simulated participant and dummy mode write no EDF: their run records carry no
    ``edf_name``/``edf_local_name`` (an analyst looked for a file that never existed), though
    the tracker still gets a valid name to check."""
    paths = SessionPaths(data_dir=tmp_path, participant="01", session="1", task="t")
    sidecar = {"runs": [{}]}
    files = SessionTrackerFiles(
        paths=paths,
        sidecar=sidecar,
        run_record=sidecar["runs"][-1],
        prefix="fv",
        write_sidecar=lambda: None,
        records_edf=False,
    )
    name = files.name_run()
    assert len(name) == 8 and name.startswith("fv")
    assert sidecar["runs"][-1] == {"run": 1}
