"""The mistakes people make writing a protocol by hand: each is refused at load, before a
generator loads or a window opens, with one line that names the file, the field, what is wrong
and what would be right. And docs/protocol.md documents every field the schema has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from generator.errors import FoveaError
from protocol import load_protocol
from protocol.schema import Protocol
from protocol.suggest import table_model
from tests.study.conftest import pilot_dict, write_toml

ROOT = Path(__file__).resolve().parents[2]


def _error(tmp_path, data) -> str:
    path = write_toml(data, tmp_path / "mine.toml")
    with pytest.raises(FoveaError) as info:
        load_protocol(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


def _staircase(data, **settings):
    data["procedure"] = {"method": "staircase", "trials_per_condition": 20, "staircase": settings}
    return data


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["conditions"][0].update(level_variabel="strength"),
            "field conditions[0](name=acuity_centre).level_variabel: unknown field in "
            "[[conditions]]; did you mean level_variable?",
        ),
        (
            lambda d: d["conditions"][0].update(strenght=1.0),
            "unknown field in [[conditions]]; its keys: name, layout_mode, fixation_deg",
        ),
        (
            lambda d: d.update(dispaly=d.pop("display")),
            "field dispaly: unknown field in the top level; did you mean display?",
        ),
        (
            lambda d: d["timing"].update(stimulus_duration_ms=500),
            "unknown field in [timing]; did you mean stimulus_duration_s?",
        ),
        (
            lambda d: d["tracker"].update(distance_cm=57.0),
            "field tracker.distance_cm: unknown field in [tracker]; distance_cm belongs in "
            "[display]",
        ),
        (
            lambda d: d["stimulus"].update(conditions=[]),
            "conditions are [[conditions]] tables",
        ),
        (
            lambda d: d["conditions"][0].update(level_variable="strenght"),
            "(got 'strenght'); did you mean 'strength'?",
        ),
        (
            lambda d: d["procedure"].update(method="quest+"),
            "did you mean 'questplus'?",
        ),
        (
            lambda d: d["stimulus"].update(model="defualt"),
            "field stimulus.model: unknown model 'defualt': did you mean 'default'?",
        ),
        (
            lambda d: d["stimulus"].update(model="/no/such/flux1-schnell"),
            "give a preset (default, default-tokens-only, tiny",
        ),
        (
            lambda d: d.update(conditions=[]),
            "field conditions: a protocol has at least one [[conditions]] table",
        ),
    ],
)
def test_typos_say_what_was_meant(tmp_path, edit, expected):
    data = pilot_dict()
    edit(data)
    assert expected in _error(tmp_path, data)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d["display"].update(distance_cm="57"), "display.distance_cm"),
        (lambda d: d["feedback"].update(enabled="yes"), "feedback.enabled"),
        (lambda d: d["tracker"].update(sampling_rate_hz="1000"), "tracker.sampling_rate_hz"),
        (lambda d: d["conditions"][0].update(levels=["0.5", "1"]), "levels[0]"),
        (lambda d: d["conditions"][0].update(fixation_deg=["6", "0"]), "fixation_deg[0]"),
    ],
)
def test_quoted_numbers_and_booleans_are_refused(tmp_path, edit, field):
    data = pilot_dict()
    edit(data)
    message = _error(tmp_path, data)
    assert field in message and "written without quotes" in message


def test_a_twin_cache_without_room_is_refused(tmp_path):
    """``twin_cache_size = 0`` would throw every prefetched twin away and generate it again."""
    data = pilot_dict()
    data["generation"]["twin_cache_size"] = 0
    message = _error(tmp_path, data)
    assert "field generation.twin_cache_size: must be at least 1 (got 0)" in message
    assert "every prefetched twin would be thrown away" in message
    data["generation"]["twin_cache_size"] = 1
    loaded = load_protocol(write_toml(data, tmp_path / "one.toml")).protocol
    assert loaded.generation.twin_cache_size == 1


def test_integers_are_numbers_and_arrays_are_pairs(tmp_path):
    data = pilot_dict()
    data["display"]["distance_cm"] = 60
    data["conditions"][0]["fixation_deg"] = [0, 0]
    protocol = load_protocol(write_toml(data, tmp_path / "ints.toml")).protocol
    assert protocol.display.distance_cm == 60.0
    assert protocol.conditions[0].fixation_deg == (0.0, 0.0)


@pytest.mark.parametrize("field", ["width_cm", "height_cm"])
def test_a_screen_size_in_mm_is_refused(tmp_path, field):
    data = pilot_dict()
    data["display"][field] *= 10
    assert "does not have the shape of width_px x height_px" in _error(tmp_path, data)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: _staircase(d, step_sizes=[3.0]),
            "the first staircase step (3 log10 units) against the level range 0.1..8 (1.9 "
            "log10 units) spans all of it",
        ),
        (
            lambda d: _staircase(d, step_scale="linear", step_sizes=[0.05]),
            "takes over 100 steps to cross it",
        ),
        (
            lambda d: (
                _staircase(d, n_staircases=4),
                d["procedure"].update(trials_per_condition=3),
            ),
            "field procedure: trials_per_condition (3) is split over staircase.n_staircases (4)",
        ),
    ],
)
def test_staircases_that_cannot_work_are_refused(tmp_path, edit, expected):
    data = pilot_dict()
    edit(data)
    assert expected in _error(tmp_path, data)


def _periphery_factor(data, **condition):
    """The pilot with its second condition the paper's circle at periphery factor 2."""
    data["conditions"][1].update(
        layout_mode="circle", level_variable="periphery_factor", levels=[2.0], **condition
    )
    data["procedure"] = {"method": "constant", "constant": {"repeats": 2}}
    return data


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            # 3 lies in 0.1..4 (the range ends of a periphery factor need only be positive),
            # but no layout has a periphery 3 times coarser: the session failed at its first
            # practice trial with "periphery factor must be 2 or 4, got 3".
            lambda d: (
                _periphery_factor(d, level_max=4.0),
                d["practice"].update(trials=2, levels=[3.0]),
            ),
            "field practice.levels: 3 is not a periphery_factor level of condition "
            "acuity_right6 (2 or 4): give practice levels every condition can show",
        ),
        (
            # Without practice levels a condition practises at its level_max.
            lambda d: (_periphery_factor(d, level_max=3.0), d["practice"].update(trials=2)),
            "field conditions[1](name=acuity_right6).level_max: 3 is where the practice runs, "
            "but periphery_factor levels are 2 or 4: set level_max = 2 or 4, or give "
            "[practice] levels",
        ),
        (
            # The example pair is shown at level_max too.
            lambda d: (_periphery_factor(d, level_max=8.0), d["practice"].update(example=True)),
            "field conditions[1](name=acuity_right6).level_max: 8 is where the practice runs",
        ),
        (
            lambda d: d["practice"].update(trials=2, levels=[9.0]),
            "field practice.levels: 9 lies outside the level range of condition(s) "
            "acuity_centre, acuity_right6: give practice levels inside every condition's "
            "level_min..level_max",
        ),
    ],
)
def test_practice_levels_a_condition_cannot_show_are_refused(tmp_path, edit, expected):
    data = pilot_dict()
    data["practice"] = {}
    edit(data)
    assert expected in _error(tmp_path, data)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: d["stimulus"].update(image_width_px=2048, image_height_px=512),
            "field stimulus.image_width_px: 2048 px is wider than the display (display.width_px "
            "= 1920): the image is shown 1:1, one pixel per screen pixel; give at most 1920",
        ),
        (
            lambda d: d["stimulus"].update(image_width_px=512, image_height_px=1200),
            "field stimulus.image_height_px: 1200 px is taller than the display "
            "(display.height_px = 1080): the image is shown 1:1, one pixel per screen pixel; "
            "give at most 1072",
        ),
    ],
)
def test_an_image_larger_than_the_screen_names_the_key_and_the_largest_size(
    tmp_path, edit, expected
):
    data = pilot_dict()
    data["display"].update(width_px=1920, height_px=1080, width_cm=53.1, height_cm=29.9)
    edit(data)
    assert expected in _error(tmp_path, data)


def test_practice_at_a_periphery_factor_conditions_level_max_loads(tmp_path):
    data = _periphery_factor(pilot_dict(), level_max=4.0)
    data["practice"] = {"trials": 2, "example": True}
    loaded = load_protocol(write_toml(data, tmp_path / "ok.toml"))
    assert loaded.protocol.conditions[1].level_max == 4.0
    # Without practice a periphery factor's level_max is no level, and need not be one.
    data = _periphery_factor(pilot_dict(), level_max=3.0)
    assert load_protocol(write_toml(data, tmp_path / "none.toml")).protocol.practice.trials == 0


def test_a_mistake_is_one_cli_line_before_the_generator_loads(tmp_path, capsys):
    from fovea_cli.main import main

    data = pilot_dict()
    data["conditions"][1]["level_mxa"] = 4.0
    path = write_toml(data, tmp_path / "typo.toml")
    assert main(["simulate", str(path), "--data", str(tmp_path / "d"), "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert "loading generator" not in out and not (tmp_path / "d").exists()
    assert err.startswith(f"error: {path}: ") and err.count("\n") == 1
    assert "conditions[1](name=acuity_right6).level_mxa" in err and "did you mean level_max" in err


def test_unusual_but_valid_protocols_load(tmp_path):
    one = pilot_dict()
    one["conditions"] = [dict(one["conditions"][0], levels=[2.0])]
    one["procedure"] = {"method": "constant", "constant": {"repeats": 1}}
    assert load_protocol(write_toml(one, tmp_path / "one.toml")).protocol.conditions[0].levels
    many = pilot_dict()
    base = many["conditions"][0]
    many["conditions"] = [
        dict(base, name=f"c{i}", fixation_deg=[float(i % 5 - 2), float(i // 5 - 2)])
        for i in range(25)
    ]
    assert len(load_protocol(write_toml(many, tmp_path / "many.toml")).protocol.conditions) == 25


def test_model_presets_match_the_generators():
    from generator.loading import DEFAULT_PRESETS
    from generator.tiny import TINY_PRESETS
    from protocol.models import MODEL_PRESETS, PRESET_SCENE_FACTOR

    assert (
        set(MODEL_PRESETS) == set(DEFAULT_PRESETS) | set(TINY_PRESETS) == set(PRESET_SCENE_FACTOR)
    )


@pytest.mark.parametrize("model", ["tiny", "default"])
def test_presets_have_the_token_size_and_scene_factor_the_protocol_checks(model):
    from generator.loading import load_generator
    from protocol.models import PRESET_SCENE_FACTOR, PRESET_TOKEN_PX

    generator = load_generator(model)
    assert generator.token_px == PRESET_TOKEN_PX
    assert generator.scene_factor == PRESET_SCENE_FACTOR[model]


def test_check_refuses_scenes_for_a_model_that_takes_none_as_run_does(tmp_path, capsys):
    from fovea_cli.main import main
    from tests.study.conftest import small_protocol_dict

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (400, 300), (120, 90, 60)).save(photos / "a.png")
    small = write_toml(small_protocol_dict(), tmp_path / "s.toml")  # model tiny: classes
    assert main(["check", str(small), "--scenes", str(photos)]) == 2
    assert "takes prompts or classes, not scenes" in capsys.readouterr().err


def test_an_image_that_is_not_whole_tokens_is_refused_at_load(tmp_path):
    data = pilot_dict()
    data["stimulus"]["image_height_px"] = 250
    assert (
        "field stimulus.image_height_px: 250 px does not divide into the 16 px tokens of model "
        "'default': use a multiple of 16 (e.g. 240 or 256)"
    ) in _error(tmp_path, data)


def _tables(model, path=()):
    yield path, model
    for name in model.model_fields:
        sub = table_model(model, (name,))
        if sub is not None:
            yield from _tables(sub, (*path, name))


def test_docs_list_every_field_of_every_table():
    """docs/protocol.md has a section per table whose rows name each of its fields."""
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    missing = []
    for path, model in _tables(Protocol):
        title = (
            "top level"
            if not path
            else ("[[conditions]]" if path == ("conditions",) else "[" + ".".join(path) + "]")
        )
        match = re.search(rf"^## `?{re.escape(title)}`?.*?$(.*?)(?=^## |\Z)", text, re.M | re.S)
        if match is None:
            missing.append(title)
            continue
        section = match.group(1)
        for name in model.model_fields:
            if table_model(model, (name,)) is None and f"| `{name}` |" not in section:
                missing.append(f"{title} {name}")
    assert not missing, f"docs/protocol.md lacks: {missing}"


def test_a_scene_folder_that_does_not_exist_is_refused_before_the_generator(tmp_path, capsys):
    from fovea_cli.main import main

    data = pilot_dict()
    data["stimulus"]["scenes"] = "lab_photos"
    path = write_toml(data, tmp_path / "scenes.toml")
    assert main(["simulate", str(path), "--data", str(tmp_path / "d"), "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert "loading generator" not in out and err.count("\n") == 1
    assert err.startswith(f"error: {path}: [stimulus] scenes = 'lab_photos' (relative to the ")
    assert f"{tmp_path / 'lab_photos'} does not exist" in err
    args = ["simulate", str(path), "--data", str(tmp_path / "d"), "--scenes", str(tmp_path / "x")]
    assert main([*args, "--quiet"]) == 2
    assert capsys.readouterr().err.startswith(f"error: --scenes {tmp_path / 'x'}: ")


def test_check_validates_and_summarises(tmp_path, capsys):

    from fovea_cli.main import main
    from tests.study.conftest import PROTOCOLS, small_protocol_dict

    assert main(["check", str(PROTOCOLS / "pilot_2afc.toml")]) == 0
    out = capsys.readouterr().out
    assert "768x768 px (17.0x17.0 deg), scenes pool" in out
    assert (
        "condition acuity_right6: acuity, fixation (6, 0) deg, strength 0.1..8, 20 trials; "
        "tokens 82.3 % of full at 0.1, 2.9 % at 8" in out
    )
    assert "procedure: questplus, interleaved, 40 main trials per session" in out
    assert out.rstrip().endswith("pilot_2afc.toml: valid")
    small = write_toml(small_protocol_dict(method="staircase", trials=5), tmp_path / "s.toml")
    assert main(["check", str(small)]) == 0
    out = capsys.readouterr().out
    assert "fixation (3, 0) deg (off the image: all periphery)" in out
    assert "(2.9x2.9 deg), no scenes (the model takes classes or prompts)" in out  # tiny
    assert "staircase, interleaved, 6 main trials" in out
    data = pilot_dict()
    data["procedure"]["method"] = "quest"
    assert main(["check", str(write_toml(data, tmp_path / "bad.toml"))]) == 2
    assert "did you mean 'questplus'?" in capsys.readouterr().err


@pytest.mark.parametrize(("lora", "tokens"), [(True, (2200, 1312)), (False, (2368, 1384))])
def test_check_counts_circle_tokens_by_the_rule_generation_uses(tmp_path, capsys, lora, tokens):
    """With ``[stimulus] lora`` the study generates circle layouts by the release's rule
    (generator.token_rules.default_token_rules): check's shares count by it too; without one, by
    the kit's. The count needs neither the model nor the LoRA's weights: an empty directory and
    an empty file stand in for them."""
    from fovea_cli.main import main

    data = pilot_dict()
    model = tmp_path / "klein"
    model.mkdir()
    data["stimulus"].update(model=str(model), image_width_px=1024, image_height_px=1024)
    if lora:
        (tmp_path / "fov_random.safetensors").write_bytes(b"")
        data["stimulus"]["lora"] = "fov_random.safetensors"
    data["conditions"] = [
        {
            "name": "circle_centre",
            "layout_mode": "circle",
            "level_variable": "radius_shrink",
            "periphery_factor": 2,
            "level_min": 0.5,
            "level_max": 0.75,
            "levels": [0.5, 0.75],
        }
    ]
    assert main(["check", str(write_toml(data, tmp_path / "circle.toml"))]) == 0
    at_half, at_three_quarters = (100 * n / 4096 for n in tokens)  # radius 0.5 and 0.25
    assert (
        f"tokens {at_half:.1f} % of full at 0.5, {at_three_quarters:.1f} % at 0.75"
        in capsys.readouterr().out
    )


def test_check_says_when_sessions_give_the_report_too_few_trials(tmp_path, capsys):
    """A protocol with 6 trials per condition checked 'valid' without a word, and the report
    then excluded every participant (QC: fewer than 20 analysed trials in a condition); check
    now says so, with the report's own default."""
    from analysis.fits import FitSettings
    from analysis.qc import QCRules
    from fovea_cli.main import main
    from tests.study.conftest import PROTOCOLS, small_protocol_dict

    assert QCRules().min_trials_per_condition == 20 and FitSettings().min_trials == 10
    assert main(["check", str(PROTOCOLS / "pilot_2afc.toml")]) == 0  # 20 each: enough
    assert "note: fewer than" not in capsys.readouterr().out
    small = write_toml(small_protocol_dict(method="staircase", trials=5), tmp_path / "s.toml")
    assert main(["check", str(small)]) == 0
    out = capsys.readouterr().out
    assert "note: fewer than 20 main trials per session in " in out
    assert "the report fits a participant only with at least 20 analysed trials" in out
    assert "--qc-rules FILE with min_trials_per_condition lowers it, to no fewer than 10" in out


@pytest.mark.parametrize(("every", "note"), [(0, False), (20, False), (40, True), (50, True)])
def test_check_says_when_no_break_falls_within_a_session(tmp_path, capsys, every, note):
    """``[breaks] every_n_trials`` at or above the main trials per session (the pilot: 40)
    gives no break at all (a break comes before a further main trial); check said nothing."""
    from fovea_cli.main import main

    data = pilot_dict()
    data["breaks"]["every_n_trials"] = every
    assert main(["check", str(write_toml(data, tmp_path / "b.toml"))]) == 0
    out = capsys.readouterr().out
    expected = (
        f"note: [breaks] every_n_trials = {every}, but a session has 40 main trials: no break "
        "(lower it for breaks, or set 0)"
    )
    assert (expected in out) == note, out


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d.mkdir(), "no images in it"),
        (lambda d: d.write_text("notes"), "is not a JPEG or PNG image"),
    ],
)
def test_check_refuses_a_scenes_folder_that_run_would_refuse(tmp_path, capsys, make, message):
    """`fovea check --scenes` said "valid" for an empty folder or a text file, which `fovea run`
    then refused; it now checks the photographs as run does."""
    from fovea_cli.main import main
    from tests.study.conftest import PROTOCOLS

    scenes = tmp_path / "scenes"
    make(scenes)
    assert main(["check", str(PROTOCOLS / "pilot_2afc.toml"), "--scenes", str(scenes)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_check_names_a_single_levels_token_share_once(tmp_path, capsys):
    """A condition with one level: its token share once ('... at 2, ... at 2' repeated it)."""
    from fovea_cli.main import main
    from tests.study.conftest import small_protocol_dict

    data = small_protocol_dict(method="constant", trials=1)
    data["conditions"][0].update(fixation_deg=[0.0, 0.0], levels=[2.0])
    data["procedure"]["constant"] = {"repeats": 1}
    assert main(["check", str(write_toml(data, tmp_path / "one.toml"))]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if "% of full at" in x]
    assert line.count("% of full at 2") == 1 and "% at 2" not in line
