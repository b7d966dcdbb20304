"""The virtual display started by ``study.xvfb`` does not outlive its session's process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys, time
from study.xvfb import virtual_display
with virtual_display(width_px=64, height_px=64):
    print("ready", flush=True)
    time.sleep(60)
"""


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie (reparented, not yet reaped) has ended


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("Xvfb") is None,
    reason="needs Linux and Xvfb",
)
def test_xvfb_ends_when_the_session_process_is_killed():
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["PYTHONPATH"] = str(REPO)
    session = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE, text=True
    )
    xvfb = None
    try:
        assert session.stdout.readline().strip() == "ready"
        (xvfb,) = _children(session.pid)
        session.send_signal(signal.SIGKILL)  # as a kill -9 or the OOM killer would
        session.wait(10)
        deadline = time.monotonic() + 10
        while _running(xvfb) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(xvfb), "Xvfb outlived the killed session"
    finally:
        session.kill()
        session.wait(10)
        if xvfb is not None and _running(xvfb):  # the failure's orphan: do not leave it running
            os.kill(xvfb, signal.SIGKILL)
