"""The EDF transfer of the EyeLink tracker's own code, through the pylink emulator: a cancelled (0)
or failed (< 0) ``receiveDataFile`` is no file, a received one is durable before it is named, a
link opened only to fetch files, and a link error while reading samples is no gaze, not a crash."""

from __future__ import annotations

import math
import os

import pytest

from generator.geometry import default_display
from study.trackers import make_tracker
from study.trackers.emulated_host import FaultScript
from tests.study.eyelink_emulation import open_tracker, run_frames, run_trial, settings


def _local_files(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("code", [0, -6])  # SR: 0 cancelled, -6 link terminated
def test_a_cancelled_or_failed_transfer_is_no_file_and_the_host_keeps_it(tmp_path, code):
    tracker, clock = open_tracker(
        tmp_path, faults=FaultScript(receive_codes=[code]), edf_name="fvcut01"
    )
    tracker.start_recording()
    run_trial(tracker, clock, 1)
    local = tmp_path / "local"
    assert tracker.close(dest_dir=local, local_name="run1.edf") is None
    assert _local_files(local) == []  # neither the cut copy nor its .part
    assert tracker.close_steps["receiveDataFile"].startswith("failed")
    assert str(code) in tracker.close_steps["receiveDataFile"]
    assert tracker.report()["local_edf"] is None
    # The Host PC keeps the whole file: the next connection fetches it complete.
    host_file = tracker.host.path("fvcut01")
    again, _ = open_tracker(tmp_path, edf_name="fvcut02", clock=clock)
    fetched = again.fetch_host_file("fvcut01", dest=local / "run1.edf")
    assert fetched == local / "run1.edf"
    assert fetched.read_bytes() == host_file.read_bytes()
    again.close(dest_dir=local)


def test_a_part_file_left_by_a_killed_transfer_is_not_taken_for_the_copy(tmp_path):
    """A transfer killed half-way (Ctrl-C on the saving screen) leaves ``<name>.part``; the
    resume's fetch received into the same name, but pylink's receiveDataFile never replaces
    a local file (it writes to an unused name), so the cut .part was renamed into place as
    the fetched EDF."""
    tracker, clock = open_tracker(tmp_path, edf_name="fvkill01")
    tracker.start_recording()
    run_trial(tracker, clock, 1)
    tracker.stop_recording()
    tracker.el.closeDataFile()
    host_file = tracker.host.path("fvkill01")
    local = tmp_path / "local"
    local.mkdir()
    (local / "run1.edf.part").write_bytes(host_file.read_bytes()[:100])  # the killed copy
    fetched = tracker.fetch_host_file("fvkill01", dest=local / "run1.edf")
    assert fetched == local / "run1.edf"
    assert fetched.read_bytes() == host_file.read_bytes()
    assert _local_files(local) == ["run1.edf"]
    tracker.close(dest_dir=local)


def test_a_received_file_is_fsynced_and_its_folder_after_the_rename(tmp_path, monkeypatch):
    tracker, clock = open_tracker(tmp_path, edf_name="fvsync01")
    tracker.start_recording()
    run_frames(tracker, clock, 8)
    events = []
    fsync, replace = os.fsync, os.replace

    def spy_fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return fsync(fd)

    def spy_replace(src, dst):
        events.append(("replace", str(src), str(dst)))
        return replace(src, dst)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    local = tracker.close(dest_dir=tmp_path / "local", local_name="run1.edf")
    target = str(tmp_path / "local" / "run1.edf")
    partial = target + ".part"
    assert local is not None and tracker.close_steps["saveDataFile"] == "ok"
    mine = [e for e in events if partial in e[1:] or target in e[1:] or e[1] == str(local.parent)]
    assert mine == [
        ("fsync", partial),
        ("replace", partial, target),
        ("fsync", str(tmp_path / "local")),
    ]


def test_a_transfer_only_link_fetches_without_a_window_and_records_nothing(tmp_path):
    tracker, clock = open_tracker(
        tmp_path, faults=FaultScript(link_lost_at_trial=2), edf_name="fvtr01"
    )
    tracker.start_recording()
    run_trial(tracker, clock, 1)
    tracker.trial_start(trial=2, variables={})  # the link drops: the file stays on the Host
    assert tracker.close(dest_dir=tmp_path / "local") is None
    # What a --resume of a completed session builds: a tracker that never opens a window.
    fetcher = make_tracker(
        "eyelink-emulated",
        settings=settings(),
        seed=3,
        clock=clock,
        display=default_display(),
        faults=FaultScript(),
        host_dir=tmp_path / "host",
    )
    fetcher.connect_for_transfer(session_dir=tmp_path)
    with pytest.raises(RuntimeError, match="only to transfer"):
        fetcher.el.startRecording(1, 1, 1, 1)
    fetched = fetcher.fetch_host_file("fvtr01", dest=tmp_path / "local" / "run1.edf")
    fetcher.disconnect()
    assert fetched.read_bytes() == fetcher.host.path("fvtr01").read_bytes()
    assert fetcher.el is None and fetcher.host.files() == ["FVTR01.EDF"]  # no new file


@pytest.mark.parametrize("call", ["getNewestSample", "trackerTime"])
def test_a_link_error_reading_a_sample_is_no_gaze_not_a_crash(tmp_path, call):
    tracker, clock = open_tracker(tmp_path)
    tracker.start_recording()
    assert run_frames(tracker, clock, 8)[-1].valid
    tracker.emulator.fail_next(call, 2)
    first, second, third = run_frames(tracker, clock, 3)
    for failed in (first, second):
        assert not failed.valid and not failed.is_new and math.isnan(failed.x_deg)
    assert third.valid and third.is_new  # the next frame reads the link again
    assert tracker.is_connected() and tracker.is_recording()


def test_a_scripted_tracker_time_failure_is_the_samples_not_the_setups(tmp_path):
    """failing_calls={"trackerTime": 1} (a link error reading the tracker's time with a
    sample) failed the session's first calibration instead: the emulated Host stamped its own
    !CAL lines by calling trackerTime()."""
    faults = FaultScript(failing_calls={"trackerTime": 1})
    tracker, clock = open_tracker(tmp_path, faults=faults)
    assert tracker.calibrate().accepted
    tracker.start_recording()  # its clock offset reads trackerTime(): the scripted failure
    assert tracker.report()["clock_offset_ms"] is not None
    assert run_frames(tracker, clock, 2)[-1].valid
