"""Tracker plumbing that needs no display: EDF names, key codes, geometry, the factory."""

from __future__ import annotations

import math

import pytest

from generator.errors import FoveaError
from generator.geometry import default_display
from protocol import TrackerSettings
from study.graphics.keys import ENTER_KEY, ESC_KEY, F_KEYS, MOD_CTRL, MOD_SHIFT, eyelink_key
from study.trackers import Tracker, make_tracker, validate_edf_name
from study.trackers.eyelink import DummyEyeLinkTracker, EyeLinkTracker, parse_validation_message
from study.trackers.screen import WindowMapper
from study.trackers.sim import SimulatedTracker


@pytest.mark.parametrize("name", ["fv0001", "A_b9", "12345678", "x"])
def test_valid_edf_names_pass(name):
    assert validate_edf_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("sub01ses1", "9 characters"),
        ("bad-name", "'-'"),
        ("fv 01", "' '"),
        ("", "empty"),
        ("fv01.edf", "without '.edf'"),
        ("café", "'é'"),
    ],
)
def test_invalid_edf_names_say_why(name, reason):
    with pytest.raises(FoveaError, match="EDF file name") as info:
        validate_edf_name(name)
    assert reason in str(info.value)
    assert repr(name) in str(info.value)


def test_sim_tracker_checks_the_edf_name_like_a_real_one():
    tracker = make_tracker("sim", settings=TrackerSettings(kind="sim"), seed=0, clock=lambda: 0.0)
    with pytest.raises(FoveaError, match="at most 8"):
        tracker.open(win=None, session_dir=".", edf_name="session_0001")


def test_make_tracker_builds_each_kind_and_rejects_others():
    settings = TrackerSettings()
    built = {
        kind: make_tracker(kind, settings=settings, seed=1, clock=lambda: 0.0)
        for kind in ("eyelink", "dummy", "sim")
    }
    assert isinstance(built["eyelink"], EyeLinkTracker)
    assert isinstance(built["dummy"], DummyEyeLinkTracker)
    assert isinstance(built["sim"], SimulatedTracker)
    for kind, tracker in built.items():
        assert tracker.name == kind
        assert isinstance(tracker, Tracker)  # has every method of the interface
    with pytest.raises(FoveaError, match="'tobii' is not one of eyelink, dummy, sim"):
        make_tracker("tobii", settings=settings, seed=1, clock=lambda: 0.0)


def test_key_translation_covers_the_eyelink_setup_keys():
    assert eyelink_key("c") == (ord("c"), 0)
    assert eyelink_key("c", {"shift": True}) == (ord("C"), MOD_SHIFT)
    assert eyelink_key("return") == (ENTER_KEY, 0)
    assert eyelink_key("escape") == (ESC_KEY, 0)
    assert eyelink_key("f1") == (F_KEYS["f1"], 0) == (0x3B00, 0)
    assert eyelink_key("f10") == (0x4400, 0)
    assert eyelink_key("up") == (0x4800, 0)
    assert eyelink_key("pagedown") == (0x5100, 0)
    assert eyelink_key("equal") == (ord("+"), 0)
    assert eyelink_key("minus", {"ctrl": True}) == (ord("-"), MOD_CTRL)
    assert eyelink_key("lshift") is None
    assert eyelink_key("volumeup") is None


def test_key_codes_match_pylink_constants():
    from study.trackers.eyelink import import_pylink

    pylink = import_pylink()
    assert eyelink_key("f1")[0] == pylink.F1_KEY
    assert eyelink_key("f10")[0] == pylink.F10_KEY
    assert eyelink_key("pageup")[0] == pylink.PAGE_UP
    assert eyelink_key("right")[0] == pylink.CURS_RIGHT
    assert eyelink_key("escape")[0] == pylink.ESC_KEY
    assert eyelink_key("return")[0] == pylink.ENTER_KEY


def test_validation_message_parsing():
    text = "!CAL VALIDATION HV9 R RIGHT GOOD ERROR 0.35 avg. 0.72 max OFFSET 0.12 deg."
    assert parse_validation_message(text) == (0.35, 0.72)
    assert parse_validation_message("") is None
    assert parse_validation_message("calibration aborted") is None


def test_window_mapper_full_screen_and_centred_window():
    display = default_display()
    full = WindowMapper(display=display, window_width_px=2560, window_height_px=1440)
    assert full.window_px_to_deg(1280, 720) == (0.0, 0.0)
    x_deg, y_deg = full.window_px_to_deg(1280 + display.pixels_per_degree, 720)
    assert x_deg == pytest.approx(1.0, abs=1e-3) and y_deg == 0.0
    # A smaller window sits in the middle of the screen: its centre is still 0 deg.
    small = WindowMapper(display=display, window_width_px=800, window_height_px=600)
    assert small.window_px_to_deg(400, 300) == (0.0, 0.0)
    for x_deg, y_deg in [(3.0, -2.0), (-5.5, 4.25), (0.1, 0.0)]:
        x_px, y_px = small.deg_to_window_px(x_deg, y_deg)
        back = small.window_px_to_deg(x_px, y_px)
        assert back == pytest.approx((x_deg, y_deg), abs=1e-9)
        assert small.centred_px_to_deg(x_px - 400, 300 - y_px) == pytest.approx(back, abs=1e-9)
    # Up on the screen (smaller y_px) is positive y_deg.
    assert small.window_px_to_deg(400, 200)[1] > 0
    assert math.isclose(small.window_px_to_deg(400, 200)[1], -small.window_px_to_deg(400, 400)[1])


def _link_sample(*, left=None, right=None, time_ms=1000.0):
    """A real pylink.Sample, built by pylink's own factory; left/right: (gx, gy, pupil_area)."""
    from pylink import tracker as pylink_tracker

    flags = (0x8000 if left else 0) | (0x4000 if right else 0)
    lx, ly, la = left or (0.0, 0.0, 0.0)
    rx, ry, ra = right or (0.0, 0.0, 0.0)
    zeros = (0.0, 0.0)
    return pylink_tracker.newSample(
        time_ms, flags, zeros, zeros, zeros, zeros, (la, ra), (lx, rx), (ly, ry),
        45.0, 45.0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0,
    )  # fmt: skip


def test_link_samples_convert_to_degrees_and_flag_lost_eyes():
    from study.trackers.eyelink import gaze_from_link_sample, import_pylink

    pylink = import_pylink()
    mapper = WindowMapper(display=default_display(), window_width_px=2560, window_height_px=1440)
    x_px, y_px = mapper.deg_to_window_px(4.0, -3.0)
    right = _link_sample(right=(x_px, y_px, 900.0))
    gaze = gaze_from_link_sample(right, eye="right", mapper=mapper, time_s=2.5)
    assert gaze.valid and gaze.time_s == 2.5
    assert (gaze.x_deg, gaze.y_deg) == pytest.approx((4.0, -3.0), abs=1e-9)
    # Binocular sample: the recorded eye wins.
    both = _link_sample(left=(1280.0, 720.0, 800.0), right=(x_px, y_px, 900.0))
    assert gaze_from_link_sample(both, eye="left", mapper=mapper, time_s=0.0).x_deg == 0.0
    assert gaze_from_link_sample(both, eye="right", mapper=mapper, time_s=0.0).x_deg == (
        pytest.approx(4.0)
    )
    # Blink / track loss: MISSING_DATA gaze or zero pupil -> invalid, NaN position.
    missing = pylink.FMISSING_DATA
    for lost in (
        _link_sample(right=(missing, missing, 0.0)),
        _link_sample(right=(x_px, y_px, 0.0)),
        _link_sample(right=(1e8, 1e8, 500.0)),
    ):
        gaze = gaze_from_link_sample(lost, eye="right", mapper=mapper, time_s=1.0)
        assert not gaze.valid and math.isnan(gaze.x_deg) and math.isnan(gaze.y_deg)
