"""The session's tracker records without a window: the link-lost screen's choices, calibrations
in the sidecar across runs, the per-run EDF names."""

from __future__ import annotations

from types import SimpleNamespace

from study.datalog import SessionPaths
from study.session_tracker import SessionTrackerFiles, recover_link
from study.trackers.base import CalibrationResult, TrackerLinkLost


class ScriptedPresenter:
    """Presses the scripted keys, one per shown frame (auto_advance off: an operator)."""

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
        return [self._keys.pop(0)] if self._keys else []


class FlakyTracker:
    """Connected from the ``up_after``-th check on; records once started."""

    name = "eyelink"

    def __init__(self, up_after: int) -> None:
        self.checks = 0
        self.up_after = up_after
        self.recording = False

    def is_connected(self) -> bool:
        self.checks += 1
        return self.checks >= self.up_after

    def start_recording(self) -> None:
        if not self.is_connected():
            raise TrackerLinkLost("still down")
        self.recording = True


def test_reconnect_retries_until_the_link_is_back_and_records_again():
    tracker = FlakyTracker(up_after=2)
    presenter = ScriptedPresenter(["r", "r"])  # the first R finds the link still down
    assert recover_link(tracker, presenter, trial=4) is True
    assert tracker.recording and "trial 4" in presenter.text and "--resume" in presenter.text


def test_the_operator_can_end_instead():
    tracker = FlakyTracker(up_after=99)
    assert recover_link(tracker, ScriptedPresenter(["r", "q"]), trial=4) is False
    assert not tracker.recording


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
    )
    name = files.name_run()
    assert len(name) == 8 and sidecar["runs"][-1]["run"] == 2 and written
    assert sidecar["runs"][-1]["edf_local_name"] == f"sub-01_ses-1_run-2_{name}.edf"
    sim = SimpleNamespace(name="sim", settings=SimpleNamespace(eye="right", sampling_rate_hz=500))
    files.record_calibration(
        sim, CalibrationResult(avg_error_deg=0.4, max_error_deg=float("nan"), time_s=1.0)
    )
    assert sidecar["calibration"][0] == earlier
    assert (
        sidecar["calibration"][1]["run"] == 2 and sidecar["calibration"][1]["max_error_deg"] is None
    )
