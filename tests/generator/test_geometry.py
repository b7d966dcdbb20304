import math

import numpy as np
import pytest

from generator import AcuityModel, DisplayGeometry, FoveaError, StimulusGeometry, default_display


def test_pixels_per_degree_default_display_by_hand():
    # 2 * 60 cm * tan(0.5 deg) = 1.04718 cm spans the central degree; 59.8 cm / 2560 px per px.
    expected = 2 * 60 * math.tan(math.radians(0.5)) / (59.8 / 2560)
    assert default_display().pixels_per_degree == pytest.approx(expected, rel=1e-12)
    assert default_display().pixels_per_degree == pytest.approx(44.83, abs=0.01)


def test_eccentricity_exact_not_small_angle():
    d = DisplayGeometry(
        width_px=1000, height_px=1000, width_cm=100.0, height_cm=100.0, distance_cm=50.0
    )
    # 0.1 cm per px; a point 500 px (50 cm) right of centre is at atan(50/50) = 45 deg.
    assert d.eccentricity_deg(1000, 500, 500, 500) == pytest.approx(45.0)
    # Gaze 25 cm left, point 25 cm right: 2 * atan(25/50) = 53.13 deg, not 50 cm / (50 cm/rad).
    ecc = d.eccentricity_deg(750, 500, 250, 500)
    assert ecc == pytest.approx(2 * math.degrees(math.atan(0.5)), rel=1e-10)
    # Off-axis both ways: angle between (x1, y1, d) and (x2, y2, d) by the dot product.
    p, g = np.array([20.0, -10.0, 50.0]), np.array([-5.0, 15.0, 50.0])
    by_hand = math.degrees(math.acos(p @ g / np.linalg.norm(p) / np.linalg.norm(g)))
    assert d.eccentricity_deg(700, 600, 450, 350) == pytest.approx(by_hand, rel=1e-10)
    assert d.eccentricity_deg(123.4, 321.0, 123.4, 321.0) == pytest.approx(0.0, abs=1e-9)


def test_degree_pixel_round_trip_and_axes():
    s = StimulusGeometry(display=default_display(), image_width_px=1024, image_height_px=1024)
    assert s.origin_px == (768.0, 208.0)
    x_deg, y_deg = s.image_px_to_deg(512, 512)
    assert (x_deg, y_deg) == pytest.approx((0.0, 0.0), abs=1e-12)
    x_deg, y_deg = s.image_px_to_deg(1024, 0)  # top-right corner: right and up
    assert x_deg > 0 and y_deg > 0
    back = s.deg_to_image_px(x_deg, y_deg)
    assert back == pytest.approx((1024, 0), abs=1e-9)


@pytest.mark.parametrize("field", ["width_px", "height_px", "width_cm", "height_cm", "distance_cm"])
@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_non_positive_geometry_is_rejected(field, bad):
    values = dict(width_px=100, height_px=100, width_cm=10.0, height_cm=10.0, distance_cm=50.0)
    values[field] = bad
    with pytest.raises(FoveaError, match=field):
        DisplayGeometry(**values)


def test_gaze_outside_display_is_rejected():
    s = StimulusGeometry(display=default_display(), image_width_px=512, image_height_px=512)
    s.check_gaze((-500.0, 100.0))  # left of the image but on the screen: fine
    with pytest.raises(FoveaError, match="outside"):
        s.check_gaze((-2000.0, 100.0))


@pytest.mark.parametrize("gaze", [(math.nan, 100.0), (100.0, math.inf)])
def test_a_gaze_that_is_not_a_number_says_so(gaze):
    # Before: "gaze nan,100 (image px) is outside the 2560x1440 px display".
    s = StimulusGeometry(display=default_display(), image_width_px=512, image_height_px=512)
    with pytest.raises(FoveaError, match="is not a point: give finite numbers"):
        s.check_gaze(gaze)


def test_linear_acuity_values_and_inverse():
    m = AcuityModel()
    assert m.cutoff_cpd(0.0) == pytest.approx(30.0)
    assert m.cutoff_cpd(2.0) == pytest.approx(30.0 / 4.0)
    assert m.cutoff_cpd(2.0, strength=0.5) == pytest.approx(30.0 / 2.5)
    assert m.cutoff_cpd(2.0, padding_deg=1.0) == pytest.approx(30.0 / 2.5)
    for strength, pad in [(1.0, 0.0), (0.5, 0.0), (2.0, 0.7)]:
        e = m.eccentricity_for_cutoff(5.0, strength=strength, padding_deg=pad)
        assert m.cutoff_cpd(e, strength=strength, padding_deg=pad) == pytest.approx(5.0)
    assert m.eccentricity_for_cutoff(5.0, strength=0.0) == math.inf
    assert m.eccentricity_for_cutoff(40.0) == 0.0


def test_geisler_perry_values_and_inverse():
    m = AcuityModel(kind="geisler_perry")
    assert m.cutoff_cpd(0.0) == pytest.approx(math.log(64) / 0.106)
    assert m.cutoff_cpd(2.3) == pytest.approx(math.log(64) / 0.106 / 2)
    e = m.eccentricity_for_cutoff(5.0, strength=1.5)
    assert m.cutoff_cpd(e, strength=1.5) == pytest.approx(5.0)
