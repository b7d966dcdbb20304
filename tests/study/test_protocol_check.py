"""What `fovea check PROTOCOL` tells an experimenter about the method: numbers a methods section
copies (the image in degrees), computed as the geometry defines them."""

from __future__ import annotations

import math

from protocol import load_protocol
from protocol.geometry import image_size_deg, stimulus_geometry
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
