"""A session end to end with pylink's dummy mode (``EyeLink(None)``): the mouse is the gaze, the
keyboard answers. Input reaches PsychoPy through the X server (XTest), as a real mouse and
keyboard would; the session runs on the real clock."""

from __future__ import annotations

import json
import threading
import time

import pandas as pd
import pytest

from protocol import load_protocol
from study.session import SessionConfig, run_session
from tests.study.conftest import small_protocol_dict, write_toml

pytestmark = pytest.mark.display


def _psychopy_windows(connection):
    root = connection.screen().root
    stack = [root]
    while stack:
        window = stack.pop()
        try:
            name = window.get_wm_name()
            attrs = window.get_attributes()
        except Exception:  # noqa: BLE001 - windows come and go
            continue
        if name and "PsychoPy" in str(name) and attrs.map_state == 2:  # IsViewable
            yield window
        try:
            stack.extend(window.query_tree().children)
        except Exception:  # noqa: BLE001
            continue


class Participant(threading.Thread):
    """Keeps the mouse on the window's centre (the fixation mark) and presses keys:
    SPACE for the text screens, then alternately 1 and RIGHT to answer."""

    def __init__(self, display: str) -> None:
        super().__init__(daemon=True)
        self.display = display
        self.stop = threading.Event()
        self.presses: list[str] = []

    def run(self) -> None:
        from Xlib import XK, X
        from Xlib import display as xdisplay
        from Xlib.ext import xtest

        connection = xdisplay.Display(self.display)
        keys = ["space", "1", "space", "Right"]
        i = 0
        while not self.stop.is_set():
            for window in _psychopy_windows(connection):
                geometry = window.get_geometry()
                origin = window.translate_coords(connection.screen().root, 0, 0)
                x, y = -origin.x + geometry.width // 2, -origin.y + geometry.height // 2
                xtest.fake_input(connection, X.MotionNotify, x=x, y=y)
                key = keys[i % len(keys)]
                code = connection.keysym_to_keycode(XK.string_to_keysym(key))
                xtest.fake_input(connection, X.KeyPress, code)
                xtest.fake_input(connection, X.KeyRelease, code)
                self.presses.append(key)
                i += 1
                break
            connection.sync()
            time.sleep(0.15)
        connection.close()


def test_dummy_mode_session_runs_end_to_end(virtual_x, tmp_path):
    data = small_protocol_dict(method="constant", trials=2)
    data["conditions"][0].update(fixation_deg=[0.0, 0.0], levels=[2.0])
    data["procedure"]["constant"] = {"repeats": 2}
    data["tracker"]["kind"] = "dummy"
    # This session runs on the real clock, where a dropped frame (an interval over 1.5 periods)
    # from interval 1 to interval 2 re-queues the trial. Xvfb has no vsync and the flips are
    # paced by sleeping, so on a loaded machine frames drop at random (an idle run here re-queued
    # two of four trials); ten aborts in a row stop the session. Re-queueing for dropped frames
    # has its own tests (test_frame_drops.py); here it only made the outcome depend on the load.
    data["timing"]["requeue_dropped_frames"] = False
    loaded = load_protocol(write_toml(data, tmp_path / "dummy.toml"))
    config = SessionConfig(
        loaded=loaded,
        data_dir=tmp_path / "data",
        participant="01",
        tracker="dummy",
        observer="human",
        seed=3,
        fullscreen=False,
        quiet=True,
        allow_virtual_display=True,  # the suite's Xvfb (fovea run refuses it otherwise)
    )
    participant = Participant(virtual_x)
    participant.start()
    try:
        result = run_session(config)
    finally:
        participant.stop.set()
        participant.join(timeout=5)
    assert result.status == "completed", result.status
    rows = pd.read_csv(result.paths.beh_tsv, sep="\t", na_values="n/a", keep_default_na=False)
    answered = rows[rows["response"].notna()]
    assert len(answered) == 2 and set(answered["response"]) <= {1, 2}
    assert (answered["observer"] == "human").all() and (answered["rt_s"] > 0).all()
    # the mouse sat on the mark: gaze at generation ~ (0, 0)
    assert (answered["gaze_x_deg"].abs() < 0.5).all() and (answered["gaze_y_deg"].abs() < 0.5).all()
    sidecar = json.loads(result.paths.beh_json.read_text())
    assert sidecar["tracker"] == "dummy" and sidecar["completed"]
    # dummy mode writes no EDF, and its run record names none
    assert "edf_name" not in sidecar["runs"][-1] and "edf_local_name" not in sidecar["runs"][-1]
    assert result.paths.physio_tsv_gz.stat().st_size > 0
