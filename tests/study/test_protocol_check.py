"""What `fovea check PROTOCOL` tells an experimenter about the method: numbers a methods section
copies (the image in degrees), computed as the geometry defines them."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from protocol import load_protocol
from protocol.geometry import image_size_deg, stimulus_geometry
from protocol.schema import Protocol
from tests.study.conftest import PROTOCOLS, pilot_dict, write_toml


def _check_output(capsys, path) -> str:
    from fovea_cli.main import main

    assert main(["check", str(path)]) == 0
    return capsys.readouterr().out


def test_image_size_is_the_visual_angle_between_the_images_edges(tmp_path, capsys):
    """The image's size in degrees is 2 atan(w / 2d) for a centred image. Check printed
    pixels / (central px per degree): 22.8 deg for threshold_2afc's 1024 px image at 60 cm on a
    59.8 cm, 2560 px screen, whose edges are in fact 22.5 deg apart (a methods section would have
    copied the wrong number; the error grows with the image: 2048 px, 45.7 for 43.5 deg)."""
    protocol = load_protocol(PROTOCOLS / "threshold_2afc.toml").protocol
    d = protocol.display
    half_cm = 1024 / 2 * d.width_cm / d.width_px
    exact = 2 * math.degrees(math.atan(half_cm / d.distance_cm))
    width, height = image_size_deg(stimulus_geometry(protocol))
    assert math.isclose(width, exact, rel_tol=1e-9) and round(exact, 1) == 22.5
    half_cm_y = 1024 / 2 * d.height_cm / d.height_px
    assert math.isclose(height, 2 * math.degrees(math.atan(half_cm_y / d.distance_cm)))
    out = _check_output(capsys, PROTOCOLS / "threshold_2afc.toml")
    assert "1024x1024 px (22.5x22.5 deg)" in out
    assert "(44.8 px/deg at the centre)" in out

    data = pilot_dict()
    data["stimulus"].update(image_width_px=2048, image_height_px=1024)
    out = _check_output(capsys, write_toml(data, tmp_path / "wide.toml"))
    assert "2048x1024 px (43.5x22.5 deg)" in out  # px / ppd: 45.7 x 22.8


def _threshold_dict() -> dict:
    import tomllib

    return tomllib.loads((PROTOCOLS / "threshold_2afc.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("tolerance", "padding"), [(1.0, 0.0), (1.0, 0.2), (1.0, 0.7), (1.0, 3.0), (0.4, 0.2)]
)
def test_the_interval_window_is_the_one_the_trial_uses(tolerance, padding):
    """``FixationSettings.interval_window_deg`` (what check reports) is the window the trial
    centres on the measured gaze from the generation on (``study.trial.fixation``)."""
    from study.trial.fixation import FixationPhases

    data = pilot_dict()
    data["fixation"]["tolerance_deg"] = tolerance
    data["conditions"][0]["padding_deg"] = padding
    protocol = Protocol.model_validate(data)
    name = protocol.conditions[0].name
    trial = SimpleNamespace(plan=SimpleNamespace(condition=name))
    used = FixationPhases._stimulus_window_deg(SimpleNamespace(protocol=protocol), trial)
    assert protocol.fixation.interval_window_deg(padding) == used


def test_full_resolution_radius_is_where_the_first_coarse_token_begins():
    """The radius check reports: the nearest point of any coarser token, from the gaze. The
    acuity rule puts none within the eccentricity where level 2 becomes invisible
    (``AcuityModel.eccentricity_for_cutoff(ppd / 4)``), and a coarse token starts within one
    fine token's diagonal of it; a circle's region is its radius (1 - level of the
    half-diagonal) to a token."""
    from generator.acuity import AcuityModel
    from protocol.levels import condition_layout, full_resolution_radius_deg
    from protocol.models import PRESET_TOKEN_PX

    protocol = Protocol.model_validate(_threshold_dict())
    geometry = stimulus_geometry(protocol)
    ppd = geometry.display.pixels_per_degree
    token_deg = math.sqrt(2) * PRESET_TOKEN_PX / ppd
    right8 = protocol.condition("acuity_right8")
    for strength in (0.5, 1.0, 2.0):
        layout = condition_layout(right8, strength, geometry, token_px=16, token_rules="kit")
        radius = full_resolution_radius_deg(layout, geometry)
        rule = AcuityModel().eccentricity_for_cutoff(ppd / 4, strength=strength)
        assert rule <= radius < rule + token_deg, (strength, radius, rule)
    circle = protocol.condition("circle2_centre")
    layout = condition_layout(circle, 0.8, geometry, token_px=16, token_rules="kit")
    radius_px = 0.2 * math.hypot(1024, 1024) / 2
    assert abs(full_resolution_radius_deg(layout, geometry) - radius_px / ppd) < token_deg
    assert math.isinf(
        full_resolution_radius_deg(
            condition_layout(circle, 0.01, geometry, token_px=16, token_rules="kit"), geometry
        )
    )


def test_check_warns_when_the_fixation_window_is_wider_than_the_full_resolution_region(
    tmp_path, capsys
):
    """threshold_2afc holds the gaze within 1 deg of the measured gaze during the intervals
    (tolerance_deg, no padding_deg), but its acuity conditions' full-resolution region is
    narrower than 1 deg from strength 1.2-1.6 on, where its thresholds are expected: a
    participant may look at coarse tokens in a trial that counts. Check said nothing about it;
    it now says where, and stays quiet once padding_deg covers the window."""
    out = _check_output(capsys, PROTOCOLS / "threshold_2afc.toml")
    assert (
        "fixation: held 0.5 s within 1.0 deg of the target, then from the images' generation "
        "to the end of interval 2 within 1.0 deg of the measured gaze" in out
    )
    assert "condition acuity_right8: " in out and (
        "full-resolution radius 11.2 deg at 0.1, 0.20 deg at 8" in out
    )
    (note,) = [line for line in out.splitlines() if "farther than the region reaches" in line]
    assert "acuity_centre (from strength 1.57, window 1.0 deg)" in note
    assert "acuity_right8 (from strength 1.24, window 1.0 deg)" in note
    assert "circle2_centre" not in note  # 1.01 deg at its highest level
    assert "padding_deg widens" in note

    data = _threshold_dict()
    for condition in data["conditions"]:
        if condition["layout_mode"] == "acuity":
            condition["padding_deg"] = 1.0
    out = _check_output(capsys, write_toml(data, tmp_path / "padded.toml"))
    assert "farther than the region reaches" not in out, out

    data["conditions"] = [c for c in data["conditions"] if c["name"] == "acuity_centre"]
    data["conditions"][0].update(padding_deg=0.0, levels=[1.0, 2.0, 4.0])
    data["procedure"] = {"method": "constant", "constant": {"repeats": 20}}
    data["practice"]["trials"] = 0
    data["simulation"]["thresholds"] = {}
    out = _check_output(capsys, write_toml(data, tmp_path / "constant.toml"))
    assert "acuity_centre (from strength 2, window 1.0 deg)" in out


def test_check_shows_the_trial_timing_in_frames(tmp_path, capsys):
    """The displays as the session counts them, whole frames of refresh_hz: at 144 Hz a 0.3 s
    interval is 43 frames, 0.299 s, which a methods section should report."""
    out = _check_output(capsys, PROTOCOLS / "pilot_2afc.toml")
    assert (
        "timing at 60 Hz: each interval 60 frames (1.000 s); between them 30 frames (0.500 s: "
        "noise mask 12 frames, then blank); response unlimited; feedback 24 frames (0.400 s); "
        "between trials 18 frames (0.300 s)" in out
    )
    data = pilot_dict()
    data["display"]["refresh_hz"] = 144.0
    data["timing"].update(stimulus_duration_s=0.3, mask_duration_s=0.0, response_window_s=3.0)
    data["feedback"]["enabled"] = False
    out = _check_output(capsys, write_toml(data, tmp_path / "fast.toml"))
    assert (
        "timing at 144 Hz: each interval 43 frames (0.299 s); between them 72 frames (0.500 s: "
        "blank); response within 3 s; feedback off; between trials 43 frames (0.299 s)" in out
    )
    data["practice"] = {"trials": 4, "feedback": True}  # feedback while learning the task only
    out = _check_output(capsys, write_toml(data, tmp_path / "practice_feedback.toml"))
    assert "; feedback off (on in practice); between trials" in out


def test_check_says_how_often_a_session_comes_back_to_a_photograph(tmp_path, capsys):
    """threshold_2afc draws its scenes from the shipped pool, 8 held-out photographs: its 560
    main trials show each about 70 times (500 seeds, 60 of them twice). Nothing said so; a
    participant can learn where a photograph shows the foveation."""
    from PIL import Image

    out = _check_output(capsys, PROTOCOLS / "threshold_2afc.toml")
    assert (
        "stimuli: 500 seeds (a session's 560 main trials repeat 60); 8 photographs (the shipped "
        "pool's held-out photographs): each in about 70 of a session's main trials" in out
    )
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        Image.new("RGB", (800, 800), (40 * i, 90, 60)).save(photos / f"p{i}.png")
    data = pilot_dict()
    data["stimulus"]["scenes"] = str(photos)
    out = _check_output(capsys, write_toml(data, tmp_path / "mine.toml"))
    assert f"stimuli: 50 seeds; 4 photographs ({photos}): each in about 10 of a session's" in out


def test_check_notes_an_image_with_an_odd_number_of_tokens_a_side(tmp_path, capsys):
    """A 720 px image is 45 tokens of 16 px a side: its right and bottom edges keep strips of
    full-resolution tokens through the periphery (a reviewer saw them at 400 px). fovea check
    said nothing; it now notes them with sizes that have none. The shipped protocols have none."""
    data = pilot_dict()
    data["stimulus"].update(image_width_px=720, image_height_px=720)
    out = _check_output(capsys, write_toml(data, tmp_path / "odd.toml"))
    assert (
        "note: the 720x720 px image is 45x45 tokens of 16 px, an odd count, so its right and "
        "bottom edges keep strips of full-resolution tokens, a sharp line through the periphery; "
        "a multiple of 128 px has none (720 px: 640 or 768) ([stimulus] image_width_px, "
        "image_height_px)" in out
    )
    for name in ("pilot_2afc", "threshold_2afc", "paper_replication"):
        assert "odd count" not in _check_output(capsys, PROTOCOLS / f"{name}.toml")


def test_check_notes_a_fixation_mark_too_small_to_draw(tmp_path, capsys):
    """1920 x 1080 px, 53 cm wide at 25 cm: 15.8 px/deg, and the 0.4 deg mark is 6.3 px across.
    Its centre dot and cross bars (1/5 of it, 1.3 px) did not show: the participant saw four
    dark specks without a centre, and fovea check said nothing. It notes it with the size that
    draws them 2 px wide; the shipped protocols (45 px/deg) get no note."""
    data = pilot_dict()
    data["display"].update(
        width_px=1920, height_px=1080, width_cm=53.0, height_cm=30.0, distance_cm=25.0
    )
    data["stimulus"].update(image_width_px=512, image_height_px=512)
    out = _check_output(capsys, write_toml(data, tmp_path / "near.toml"))
    assert (
        "note: the fixation mark is 6.3 px across (0.4 deg at 15.8 px/deg): its centre dot and "
        "cross bars, 1/5 of it (1.3 px), are too thin to draw, and the participant sees a few "
        "specks without a centre; [fixation] mark_size_deg = 0.64 or more draws them 2 px wide"
        in out
    )
    data["fixation"]["mark_size_deg"] = 0.64
    assert "fixation mark is" not in _check_output(capsys, write_toml(data, tmp_path / "m.toml"))
    for name in ("pilot_2afc", "threshold_2afc", "paper_replication"):
        assert "fixation mark is" not in _check_output(capsys, PROTOCOLS / f"{name}.toml")
