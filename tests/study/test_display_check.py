"""The display check at start (``study.display_check``): the measured refresh rate and window
size against the protocol, virtual displays refused by ``fovea run`` unless allowed, the
protocol's Monitor (deg units, gamma), and what the sidecar records; through the real PsychoPy
window on the suite's Xvfb."""

from __future__ import annotations

import json

import pytest

from protocol import load_protocol
from protocol.schema import Protocol
from study import display_check
from study.display_check import (
    DisplayRefused,
    build_monitor,
    check_display,
    display_problems,
    is_virtual_display,
    monitor_profile,
)
from tests.study.conftest import small_protocol_dict, write_toml


def _display(**changes):
    data = small_protocol_dict()
    data["display"].update(changes)
    return Protocol.model_validate(data).display


def test_rate_within_tolerance_passes_and_outside_is_a_problem():
    display = _display(refresh_hz=60.0, refresh_tolerance=0.02)
    size = (display.width_px, display.height_px)
    assert display_problems(display=display, measured_refresh_hz=60.9, window_size_px=size) == []
    (problem,) = display_problems(display=display, measured_refresh_hz=120.0, window_size_px=size)
    assert "120.00 Hz" in problem and "refresh_hz = 60" in problem
    (problem,) = display_problems(display=display, measured_refresh_hz=None, window_size_px=size)
    assert "no stable refresh rate" in problem
    (problem,) = display_problems(
        display=display, measured_refresh_hz=60.0, window_size_px=(1920, 1080)
    )
    assert "1920x1080" in problem


def test_virtual_display_from_the_renderer_or_the_xvfb_marker(monkeypatch):
    monkeypatch.delenv(display_check.XVFB_ENV, raising=False)
    assert is_virtual_display("llvmpipe (LLVM 15.0.6, 256 bits)", display=":5")
    assert not is_virtual_display("NVIDIA GeForce RTX 4070/PCIe/SSE2", display=":0")
    monkeypatch.setenv(display_check.XVFB_ENV, ":7")
    assert is_virtual_display("NVIDIA GeForce RTX 4070/PCIe/SSE2", display=":7")


def test_gamma_is_validated():
    assert _display(gamma=2.2).gamma == 2.2
    assert _display(gamma=[2.1, 2.2, 2.3]).gamma == [2.1, 2.2, 2.3]
    with pytest.raises(ValueError, match="gamma"):
        _display(gamma=[2.1, 2.2])


def test_monitor_gives_the_protocols_degrees_and_gamma():
    from psychopy.tools.monitorunittools import deg2pix

    display = _display(gamma=2.2)
    monitor = build_monitor(display)
    ppd = display.geometry().pixels_per_degree
    # PsychoPy's deg units (small-angle) and the kit's geometry agree near the centre.
    assert deg2pix(1.0, monitor) == pytest.approx(ppd, rel=0.01)
    profile = monitor_profile(monitor, display)
    assert profile["width_cm"] == display.width_cm and profile["distance_cm"] == display.distance_cm
    assert profile["size_px"] == [display.width_px, display.height_px] and profile["gamma"] == 2.2
    assert profile["gamma_applied"] and monitor.getGamma() == 2.2
    assert not monitor_profile(build_monitor(display, with_gamma=False), display)["gamma_applied"]


@pytest.fixture
def window(virtual_x):
    from psychopy import visual

    display = _display()
    win = visual.Window(
        size=(display.width_px, display.height_px),
        units="pix",
        fullscr=False,
        monitor=build_monitor(display, with_gamma=False),
        checkTiming=False,
    )
    yield win, display
    win.close()


@pytest.mark.display
def test_real_window_virtual_display_refused_unless_allowed_or_simulated(window):
    win, display = window
    with pytest.raises(DisplayRefused, match="virtual display.*--allow-virtual-display"):
        check_display(win, display=display, simulated=False, allow_virtual=False)
    allowed = check_display(win, display=display, simulated=False, allow_virtual=True)
    assert allowed.virtual and allowed.problems == [] and allowed.enforced
    assert allowed.measured_refresh_hz is None or allowed.measured_refresh_hz > 0
    simulated = check_display(win, display=display, simulated=True, allow_virtual=False)
    assert simulated.virtual and not simulated.enforced
    assert simulated.record()["window_size_px"] == [display.width_px, display.height_px]


@pytest.mark.display
def test_real_window_rate_refused_beyond_tolerance_and_passed_within(window, monkeypatch):
    """As on a lab screen (a hardware renderer): a 120 Hz panel with refresh_hz = 60 is refused,
    61 Hz passes; simulations record the mismatch without refusing."""
    win, display = window
    monkeypatch.setattr(display_check, "is_virtual_display", lambda renderer: False)
    monkeypatch.setattr(win, "getActualFrameRate", lambda **kw: 120.0)
    with pytest.raises(DisplayRefused, match=r"120\.00 Hz.*refresh_hz = 60.*nothing was run") as no:
        check_display(win, display=display, simulated=False, allow_virtual=False)
    assert no.value.measurement.measured_refresh_hz == 120.0 and no.value.measurement.problems
    recorded = check_display(win, display=display, simulated=True, allow_virtual=False)
    assert recorded.problems and not recorded.enforced
    monkeypatch.setattr(win, "getActualFrameRate", lambda **kw: 60.6)
    passed = check_display(win, display=display, simulated=False, allow_virtual=False)
    assert passed.problems == [] and passed.measured_refresh_hz == 60.6 and not passed.virtual


def _small_session_protocol(tmp_path, **display):
    data = small_protocol_dict(method="constant", trials=1)
    data["conditions"][0].update(fixation_deg=[0.0, 0.0], levels=[2.0])
    data["procedure"]["constant"] = {"repeats": 1}
    data["display"].update(display)
    return write_toml(data, tmp_path / "check.toml")


@pytest.mark.display
def test_fovea_run_refuses_the_virtual_display_with_one_line_and_stays_resumable(
    virtual_x, tmp_path, capsys
):
    from fovea_cli.main import main

    protocol = _small_session_protocol(tmp_path)
    args = ["run", str(protocol), "--participant", "01", "--data", str(tmp_path / "data")]
    assert main([*args, "--tracker", "dummy", "--windowed"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "virtual display" in err[0] and "--allow-virtual-display" in err[0]
    (beh,) = (tmp_path / "data").rglob("*_beh.tsv")
    assert len(beh.read_text().splitlines()) == 1  # the header: no trial ran
    sidecar = json.loads(beh.with_suffix(".json").read_text())
    assert sidecar["runs"][-1]["status"].startswith("refused: this is a virtual display")
    check = sidecar["runs"][-1]["display_check"]  # the measurement behind the refusal
    assert check["virtual"] and check["enforced"] and len(check["problems"]) == 1
    assert check["problems"][0].startswith("this is a virtual display")
    assert check["window_size_px"][0] > 0
    assert sidecar["monitor"]["width_cm"] > 0 and not sidecar.get("completed")
    # resumable: --resume gets as far as the display check again (refused again, nothing lost)
    assert main([*args, "--tracker", "dummy", "--windowed", "--resume"]) == 2
    assert "virtual display" in capsys.readouterr().err
    sidecar = json.loads(beh.with_suffix(".json").read_text())
    assert [r["status"][:8] for r in sidecar["runs"]] == ["refused:", "refused:"]


@pytest.mark.display
def test_simulated_session_records_the_measured_display(virtual_x, tmp_path):
    from study.session import SessionConfig, run_session

    config = SessionConfig(
        loaded=load_protocol(_small_session_protocol(tmp_path, gamma=2.2)),
        data_dir=tmp_path / "data",
        participant="sim01",
        tracker="sim",
        observer="parametric",
        seed=2,
        simulated_clock=True,
    )
    lines: list[str] = []
    result = run_session(config, log=lines.append)
    assert result.completed
    # the operator's status line per trial (study.operator)
    status = [line for line in lines if "last validation" in line]
    assert status and "(1 of 1 done)" in status[0] and "recalibrate" not in status[0]
    sidecar = json.loads(result.paths.beh_json.read_text())
    check = sidecar["runs"][-1]["display_check"]
    assert check["virtual"] and not check["enforced"] and "llvmpipe" in check["gl_renderer"]
    assert sidecar["monitor"]["width_cm"] == config.loaded.protocol.display.width_cm
    assert sidecar["monitor"]["gamma"] == 2.2 and not sidecar["monitor"]["gamma_applied"]


@pytest.mark.display
def test_the_console_line_of_a_virtual_display_never_gives_a_rate_it_did_not_measure(
    window, monkeypatch
):
    """Xvfb measured no refresh rate (the sidecar has null) and the console said "0.0 Hz"."""
    from study.display_check import check_session_display

    win, display = window
    monkeypatch.setattr(win, "getActualFrameRate", lambda *a, **k: None)
    lines: list[str] = []
    run_record: dict = {}
    check_session_display(
        win, display=display, simulated=False, allow_virtual=True, run_record=run_record,
        say=lines.append,
    )  # fmt: skip
    assert run_record["display_check"]["measured_refresh_hz"] is None
    assert lines == [
        f"display: virtual ({run_record['display_check']['gl_renderer']}), refresh rate not "
        "measured: timing not verified"
    ]
