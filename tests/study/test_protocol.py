"""Protocol validation: the shipped protocols load; every field broken in turn gives an error that
names the file, the field and the reason."""

from __future__ import annotations

import copy
import math
import tomllib

import pytest

from generator.errors import FoveaError
from protocol import load_protocol
from protocol.levels import layout_spec
from tests.study.conftest import PROTOCOLS, pilot_dict, write_toml


def _leaves(node, path=()):
    """(path, value) for every scalar or list leaf of a protocol dict."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list) and node and all(isinstance(x, dict) for x in node):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))
    else:
        yield path, node


def _set(data, path, value):
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _dotted(path) -> str:
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else ("." if out else "") + key
    return out


@pytest.mark.parametrize("name", ["pilot_2afc", "threshold_2afc", "paper_replication"])
def test_shipped_protocols_validate_and_map_every_level_to_a_layout(name):
    loaded = load_protocol(PROTOCOLS / f"{name}.toml")
    p = loaded.protocol
    assert p.name == name and len(loaded.sha256) == 64
    for condition in p.conditions:
        for level in condition.levels or [condition.level_min, condition.level_max]:
            spec = layout_spec(condition=condition, level=level)
            assert spec.mode == condition.layout_mode


def test_paper_replication_is_the_papers_design():
    p = load_protocol(PROTOCOLS / "paper_replication.toml").protocol
    (condition,) = p.conditions
    spec = layout_spec(condition=condition, level=condition.levels[0])
    assert (spec.mode, spec.circle_radius, spec.periphery_factor) == ("circle", 0.33, 2)
    assert condition.fixation_deg == (0.0, 0.0)
    assert p.timing.stimulus_duration_s == 1.0


def test_every_field_broken_by_type_names_file_and_field(tmp_path):
    base = pilot_dict()
    leaves = list(_leaves(base))
    assert len(leaves) > 50
    for path, _ in leaves:
        data = copy.deepcopy(base)
        _set(data, path, {"not": "valid here"})
        file = write_toml(data, tmp_path / "broken.toml")
        with pytest.raises(FoveaError) as info:
            load_protocol(file)
        message = str(info.value)
        assert str(file) in message, message
        field = _dotted(path)
        # conditions[0].name -> "conditions[0](name=...)" in the message
        head, _, tail = field.partition("]")
        assert (head in message and tail.lstrip(".") in message) if tail else field in message, (
            field,
            message,
        )
        assert "\n" not in message


def test_every_numeric_field_out_of_range_is_refused(tmp_path):
    base = pilot_dict()
    accepted = []
    for path, value in _leaves(base):
        if isinstance(value, bool) or not isinstance(value, int | float | list):
            continue
        if isinstance(value, list) and not all(isinstance(v, int | float) for v in value):
            continue
        data = copy.deepcopy(base)
        bad = [-1e9 for _ in value] if isinstance(value, list) else -1e9
        _set(data, path, bad)
        try:
            load_protocol(write_toml(data, tmp_path / "range.toml"))
        except FoveaError as error:
            assert _dotted(path).split("[")[0] in str(error)
        else:
            accepted.append(_dotted(path))
    assert accepted == [], f"fields accepting -1e9: {accepted}"


def test_typos_and_missing_required_fields(tmp_path):
    data = pilot_dict()
    data["timing"]["stimulus_duraton_s"] = 1.0
    with pytest.raises(FoveaError, match=r"field timing\.stimulus_duraton_s: unknown field"):
        load_protocol(write_toml(data, tmp_path / "typo.toml"))
    data = pilot_dict()
    del data["conditions"]
    with pytest.raises(FoveaError, match=r"field conditions: required field is missing"):
        load_protocol(write_toml(data, tmp_path / "missing.toml"))
    data = pilot_dict()
    del data["conditions"][1]["name"]
    with pytest.raises(FoveaError, match=r"conditions\[1\]\.name: required"):
        load_protocol(write_toml(data, tmp_path / "noname.toml"))


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            lambda d: d["timing"].update(mask_duration_s=0.6, isi_s=0.5),
            "mask_duration_s must not exceed isi_s",
        ),
        (
            lambda d: d["conditions"][0].update(level_min=5.0, level_max=1.0),
            "level_min (5.0) must be below",
        ),
        (lambda d: d["conditions"][0].update(fixation_deg=[40.0, 0.0]), "lies off the screen"),
        (
            lambda d: d["conditions"][1].update(name="acuity_centre"),
            "condition names must be unique",
        ),
        (lambda d: d["stimulus"].update(image_width_px=4000), "is wider than the display"),
        (
            lambda d: d["conditions"][0].update(level_variable="radius_shrink"),
            "does not apply to layout_mode",
        ),
        (
            lambda d: (
                d["conditions"][0].update(
                    layout_mode="circle", level_variable="periphery_factor", levels=[2, 4]
                ),
                d["procedure"].update(method="staircase"),
            ),
            "periphery_factor levels are discrete",
        ),
        (
            lambda d: d["conditions"][0].update(
                layout_mode="circle", level_variable="periphery_factor", levels=[3]
            ),
            "must be 2 or 4",
        ),
        (lambda d: d["simulation"].update(thresholds={"nope": 1.0}), "unknown conditions: nope"),
        (lambda d: d["tracker"].update(edf_prefix="toolong"), "edf_prefix"),
        (lambda d: d["procedure"].update(method="quest"), "'questplus', 'staircase' or 'constant'"),
        (
            lambda d: d["stimulus"].update(reference="photo"),
            "field stimulus.reference: Input should be 'generated' or 'original' (got 'photo')",
        ),
        (
            lambda d: d["stimulus"].update(reference="original", prompts=["a lake"]),
            "prompt models take no scenes",
        ),
        (lambda d: d["stimulus"].update(scenes=""), "field stimulus.scenes"),
    ],
)
def test_cross_field_errors_say_why(tmp_path, edit, reason):
    data = pilot_dict()
    edit(data)
    with pytest.raises(FoveaError) as info:
        load_protocol(write_toml(data, tmp_path / "cross.toml"))
    assert reason in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("level_max", math.inf), ("level_min", math.nan), ("start_level", -math.inf)],
)
def test_a_level_that_is_not_finite_is_refused_naming_the_file_and_field(
    tmp_path, capsys, field, value
):
    """``level_max = inf`` (a TOML float) got as far as the generator ("foveation strength must
    be >= 0, got inf"), naming neither the file nor the field."""
    from fovea_cli.main import main

    data = pilot_dict()
    data["procedure"]["method"] = "constant"
    data["conditions"][0].update({field: value, "levels": [0.5, 2.0]})
    path = write_toml(data, tmp_path / "inf.toml")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: field conditions[0]") and "\n" not in err
    assert f".{field}: Input should be a finite number (got {value})" in err


def test_syntax_errors_and_missing_files_are_one_line_cli_errors(tmp_path, capsys):
    from fovea_cli.main import main

    bad = tmp_path / "syntax.toml"
    bad.write_text("name = 'x\n", encoding="utf-8")
    assert main(["simulate", str(bad), "--data", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not valid TOML" in err and "\n" not in err
    assert main(["simulate", str(tmp_path / "nope.toml"), "--data", str(tmp_path / "d")]) == 2
    assert "not found" in capsys.readouterr().err


def test_a_byte_order_mark_and_windows_line_endings_load_as_the_same_settings(tmp_path):
    """Windows Notepad saves UTF-8 with a byte-order mark (and CRLF): the same protocol, with the
    same settings digest (a resume accepts the re-saved file); the file's own digest differs."""
    plain = write_toml(pilot_dict(), tmp_path / "plain.toml")
    text = plain.read_text(encoding="utf-8").replace("\n", "\r\n")
    notepad = tmp_path / "notepad.toml"
    notepad.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    loaded, expected = load_protocol(notepad), load_protocol(plain)
    assert loaded.protocol == expected.protocol
    assert loaded.settings_sha256 == expected.settings_sha256
    assert loaded.sha256 != expected.sha256  # provenance: the bytes as they are


def test_toml_writer_round_trips_the_pilot(tmp_path):
    data = pilot_dict()
    assert tomllib.loads(write_toml(data, tmp_path / "p.toml").read_text()) == data


def test_model_directories_are_relative_to_the_protocol_file(tmp_path, monkeypatch):
    """A protocol and its model directory travel together: the protocol loads from any working
    directory; presets and directories found only from the working directory stay as given."""
    lab = tmp_path / "lab pc ü"
    (lab / "models" / "klein").mkdir(parents=True)
    (lab / "models" / "klein" / "model_index.json").write_text("{}")
    (lab / "tiny").mkdir()  # a folder named like a preset, not a pipeline
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "mine").mkdir(parents=True)
    (elsewhere / "mine" / "model_index.json").write_text("{}")
    monkeypatch.chdir(elsewhere)

    def model(name: str) -> str:
        data = pilot_dict()
        data["stimulus"].update(model=name, scenes="pool", reference="generated")
        data["stimulus"].pop("classes", None)
        data["stimulus"]["prompts"] = ["a cat"]
        return load_protocol(write_toml(data, lab / "p.toml")).protocol.stimulus.model

    assert model("models/klein") == str(lab / "models" / "klein")
    assert model("tiny") == "tiny"
    assert model("mine") == "mine"  # as before: relative to the working directory


def test_an_unknown_model_directory_is_refused_naming_where_it_was_looked_for(tmp_path):
    """The refusal of a model directory that is not there says a relative path is looked up
    beside the protocol file (then in the working directory), as docs/protocol.md says."""
    data = pilot_dict()
    data["stimulus"].update(model="models/no-such-model")
    with pytest.raises(FoveaError, match="beside the protocol file, then in the working directory"):
        load_protocol(write_toml(data, tmp_path / "p.toml"))


def test_scene_folders_are_relative_to_the_protocol_file(tmp_path, monkeypatch):
    from protocol.scenes import scenes_spec

    data = pilot_dict()
    assert data["stimulus"]["model"] == "default" and data["stimulus"]["scenes"] == "pool"
    (tmp_path / "lab" / "photos").mkdir(parents=True)
    (tmp_path / "mine").mkdir()
    data["stimulus"]["scenes"] = "photos"
    loaded = load_protocol(write_toml(data, tmp_path / "lab" / "p.toml"))
    assert scenes_spec(loaded) == str(tmp_path / "lab" / "photos")
    monkeypatch.chdir(tmp_path)  # --scenes is relative to the working directory
    assert scenes_spec(loaded, override="mine") == str(tmp_path / "mine")
    assert scenes_spec(loaded, override="pool") == "pool"


def test_the_threshold_protocol_says_what_it_runs():
    """Its description (stored in every session's sidecar) and header comment said the circle
    layout ran at two fixations (the centre and 8 deg right); both circle conditions are at the
    centre, one with the periphery at 1/2x, one at 1/4x."""
    path = PROTOCOLS / "threshold_2afc.toml"
    p = load_protocol(path).protocol
    acuity = {c.fixation_deg for c in p.conditions if c.layout_mode == "acuity"}
    circle = [c for c in p.conditions if c.layout_mode == "circle"]
    assert {c.fixation_deg for c in circle} == {(0.0, 0.0)}
    assert sorted(c.periphery_factor for c in circle) == [2, 4]
    assert f"acuity strength at {len(acuity)} fixations" in p.description
    assert "circle radius at the centre (1/2x and 1/4x periphery)" in p.description
    header = path.read_text(encoding="utf-8").split("\nname = ")[0]
    assert "8 deg right" not in header and "1/4x" in header


def test_no_protocol_setting_takes_inf_or_nan(tmp_path):
    """``inf`` and ``nan`` are TOML floats but never a setting: ``[simulation] threshold = inf``
    loaded, and the simulated participant answered at chance."""
    for table, key in [
        ("simulation", "threshold"),
        ("simulation", "width"),
        ("display", "distance_cm"),
    ]:
        data = pilot_dict()
        data.setdefault(table, {})[key] = math.inf
        with pytest.raises(FoveaError, match=rf"field {table}\.{key}: .*finite number"):
            load_protocol(write_toml(data, tmp_path / f"{key}.toml"))
