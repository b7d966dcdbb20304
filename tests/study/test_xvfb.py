"""The virtual display started by ``study.xvfb`` does not outlive its session's process, and a
Ctrl-C (SIGINT to the terminal's process group) does not take it away from the window while the
session saves."""

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
INTERRUPTED = """
import time
from study.xvfb import virtual_display
with virtual_display(width_px=64, height_px=64):
    from psychopy import visual
    win = visual.Window((64, 64), units="pix", fullscr=False)
    print("ready", flush=True)
    try:
        time.sleep(60)
    except KeyboardInterrupt:
        win.flip()  # the session's saving screen: the X server must still be there
        win.close()
        print("saved", flush=True)
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


@pytest.mark.display
@pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("Xvfb") is None,
    reason="needs Linux and Xvfb",
)
def test_a_ctrl_c_reaches_the_session_but_not_its_display():
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["PYTHONPATH"] = str(REPO)
    session = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        assert session.stdout.readline().strip() == "ready"
        (xvfb,) = [pid for pid in _children(session.pid) if "Xvfb" in _command(pid)]
        os.killpg(session.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        out, err = session.communicate(timeout=30)
        assert session.returncode == 0 and out.splitlines()[-1] == "saved", err
        assert "XIO" not in err
        assert not _running(xvfb), "Xvfb outlived the session"
    finally:
        if session.poll() is None:
            session.kill()
            session.wait(10)


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
