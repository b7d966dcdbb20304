"""``fovea check PROTOCOL --preview FILE``: the protocol drawn before any model loads (the screen
with the image and fixation targets, each condition's token layouts at its levels)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from fovea_cli.main import main
from protocol import load_protocol
from protocol.preview import preview_levels
from tests.study.conftest import PROTOCOLS, small_protocol_dict, write_toml


def test_the_preview_draws_each_condition_at_its_levels(tmp_path, capsys):
    out = tmp_path / "figures" / "pilot.png"
    assert main(["check", "pilot_2afc", "--preview", str(out)]) == 0  # a shipped one, by name
    assert capsys.readouterr().out.rstrip().endswith(f"preview: {out}")
    picture = np.asarray(Image.open(out).convert("RGB")).astype(int)
    # Screen row + 2 conditions x 3 levels, 3.2 inch panels at 110 dpi.
    assert picture.shape[0] > 3 * 300 and picture.shape[1] > 3 * 300
    saturation = picture.max(axis=2) - picture.min(axis=2)
    assert (saturation > 60).mean() > 0.2  # the layouts are drawn over a photograph, not grey


def test_levels_drawn_are_the_ends_and_where_staircases_start_or_the_constant_levels():
    protocol = load_protocol(PROTOCOLS / "pilot_2afc.toml").protocol  # QUEST+
    condition, procedure = protocol.conditions[0], protocol.procedure
    assert preview_levels(condition, procedure) == [0.1, np.sqrt(0.1 * 8.0), 8.0]
    listed = condition.model_copy(update={"levels": [0.5, 1, 2, 3, 4, 6, 8]})
    assert preview_levels(listed, procedure) == [0.5, 2.0, 4.0, 8.0]
    started = condition.model_copy(update={"start_level": 2.0})
    assert preview_levels(started, procedure) == [0.1, 2.0, 8.0]
    # Linear staircases start at the arithmetic middle, as the scheduler starts them.
    linear = procedure.staircase.model_copy(update={"step_scale": "linear"})
    staircase = procedure.model_copy(update={"method": "staircase", "staircase": linear})
    assert preview_levels(condition, staircase) == [0.1, 4.05, 8.0]


def test_a_fixation_off_the_image_and_a_wrong_file_type(tmp_path, capsys):
    small = write_toml(small_protocol_dict(), tmp_path / "small.toml")  # fixation (3, 0) deg
    assert main(["check", str(small), "--preview", str(tmp_path / "small.svg")]) == 0
    assert (tmp_path / "small.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
    capsys.readouterr()
    assert main(["check", str(small), "--preview", str(tmp_path / "small.txt")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "give a .png, .pdf, .svg file name" in err
    assert not (tmp_path / "small.txt").exists()


def test_conditions_sharing_a_fixation_nest_so_each_shows():
    """threshold_2afc has three conditions at the centre: their markers nest (each later one
    smaller, on top), where the same size hid two of them; the legend keeps one size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from protocol.geometry import stimulus_geometry
    from protocol.preview import _draw_screen

    protocol = load_protocol(PROTOCOLS / "threshold_2afc.toml").protocol
    fig, ax = plt.subplots()
    _draw_screen(ax, protocol, stimulus_geometry(protocol), backdrop=None)
    at_centre = [
        line.get_markersize()
        for line, c in zip(ax.lines, protocol.conditions, strict=True)
        if tuple(c.fixation_deg) == (0, 0)
    ]
    assert len(at_centre) == 3 and at_centre == sorted(at_centre, reverse=True)
    assert len(set(at_centre)) == 3 and min(at_centre) >= 5
    assert {h.get_markersize() for h in ax.get_legend().legend_handles} == {9}
    plt.close(fig)
