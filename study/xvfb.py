"""A virtual X display for sessions and tests on machines without a screen.

PsychoPy needs an X server; simulated sessions and the tests run on servers without one. When
``DISPLAY`` is unset, ``virtual_display`` starts ``Xvfb`` (Debian package ``xvfb``) on a free
display number, points ``DISPLAY`` at it, and stops it on exit (on Linux also when the process
that started it is killed: no Xvfb outlives a ``kill -9``ed session). Import PsychoPy only inside.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

from generator.errors import FoveaError


@contextlib.contextmanager
def virtual_display(*, width_px: int = 1920, height_px: int = 1080) -> Iterator[str]:
    """Yield a usable ``DISPLAY``: the existing one, or a fresh Xvfb of the given size.

    Raises:
        FoveaError: no display and no ``Xvfb`` installed, or Xvfb failed to start.
    """
    existing = os.environ.get("DISPLAY")
    if existing:
        yield existing
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise FoveaError(
            "no DISPLAY and no Xvfb: install the virtual display (Debian/Ubuntu: "
            "apt-get install xvfb) or run on a machine with a screen"
        )
    read_fd, write_fd = os.pipe()
    # -displayfd: Xvfb picks a free display number and writes it to the pipe when ready.
    process = subprocess.Popen(
        [
            *_end_with_parent(),
            xvfb,
            "-displayfd",
            str(write_fd),
            "-screen",
            "0",
            f"{width_px}x{height_px}x24",
            "-nolisten",
            "tcp",
            "+extension",
            "GLX",
        ],
        pass_fds=(write_fd,),
        # Its own session: a Ctrl-C reaches the terminal's whole process group, and an Xvfb that
        # died of it would take the window with it (Xlib's fatal "XIO" error, exit 1) before the
        # session could save and say how to resume; this process stops it on the way out.
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        number = _read_display_number(read_fd, process, timeout_s=30.0)
    finally:
        os.close(read_fd)
    display = f":{number}"
    os.environ["DISPLAY"] = display
    os.environ["FOVEA_XVFB_DISPLAY"] = display  # study.display_check: a virtual display
    try:
        yield display
    finally:
        if os.environ.get("DISPLAY") == display:
            del os.environ["DISPLAY"]
        if os.environ.get("FOVEA_XVFB_DISPLAY") == display:
            del os.environ["FOVEA_XVFB_DISPLAY"]
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _end_with_parent() -> list[str]:
    """The command prefix that has the kernel send Xvfb SIGTERM when the process that started it
    dies (Linux's parent-death signal, set by util-linux ``setpriv``, which then execs Xvfb, so
    Xvfb's parent is still this process); [] where ``setpriv`` is missing. ``setpriv`` rather than
    a ``preexec_fn``: Python code between fork and exec can deadlock when threads are running."""
    setpriv = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return [setpriv, "--pdeathsig", "TERM"] if setpriv else []


def _read_display_number(fd: int, process: subprocess.Popen, *, timeout_s: float) -> str:
    import select

    deadline = time.monotonic() + timeout_s
    data = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 64)
            data += chunk
            if data.endswith(b"\n") or not chunk:
                break
        if process.poll() is not None:
            break
    number = data.decode().strip()
    if not number.isdigit():
        process.kill()
        raise FoveaError("Xvfb did not start (is the xvfb package complete?)")
    return number
