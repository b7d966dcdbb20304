"""Token savings at threshold: the generator's layout, mapped from levels as the study maps them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.tokens import layout_spec_for, layout_tokens, token_ratio_curve, token_savings
from generator import DisplayGeometry, StimulusGeometry, build_layout, default_display

levels_mod = pytest.importorskip("protocol.levels")
schema = pytest.importorskip("protocol.schema")

DISPLAY = {
    "width_px": 2560,
    "height_px": 1440,
    "width_cm": 59.8,
    "height_cm": 33.6,
    "distance_cm": 60.0,
}


@pytest.mark.parametrize(
    "table,level",
    [
        (
            {
                "name": "a",
                "layout_mode": "acuity",
                "level_variable": "strength",
                "padding_deg": 0.5,
                "max_level": 4,
            },
            1.7,
        ),
        (
            {
                "name": "c",
                "layout_mode": "circle",
                "level_variable": "radius_shrink",
                "periphery_factor": 4,
                "level_min": 0.3,
                "level_max": 0.95,
            },
            0.6,
        ),
        (
            {
                "name": "p",
                "layout_mode": "circle",
                "level_variable": "periphery_factor",
                "circle_radius": 0.4,
                "levels": [2, 4],
            },
            4.0,
        ),
    ],
)
def test_level_mapping_matches_the_study(table, level):
    condition = schema.Condition(**table)
    assert layout_spec_for(
        condition=condition.model_dump(mode="json"), level=level
    ) == levels_mod.layout_spec(condition=condition, level=level)


def test_tokens_equal_the_generator_layout_at_the_fixation_target():
    cond = {"name": "r8", "level_variable": "strength", "fixation_deg": [8.0, 0.0]}
    tokens, full = layout_tokens(
        condition=cond, level=1.3, display=DISPLAY, image_size_px=(1024, 1024), patch_px=16
    )
    geometry = StimulusGeometry(
        display=default_display(), image_width_px=1024, image_height_px=1024
    )
    gaze = geometry.deg_to_image_px(8.0, 0.0)
    spec = layout_spec_for(condition=cond, level=1.3)
    layout = build_layout(
        geometry=geometry, gaze_px=(float(gaze[0]), float(gaze[1])), spec=spec, patch_px=16
    )
    assert (tokens, full) == (layout.num_tokens, layout.num_tokens_full) and full == 4096
    assert isinstance(DisplayGeometry(**DISPLAY).pixels_per_degree, float)


def test_more_degradation_means_fewer_tokens():
    cond = {"name": "a", "level_variable": "strength"}
    ratio = token_ratio_curve(
        condition=cond,
        levels=np.geomspace(0.25, 4, 6),
        display=DISPLAY,
        image_size_px=(1024, 1024),
        patch_px=16,
    )
    assert np.all(np.diff(ratio) <= 0) and ratio[0] > ratio[-1]


def test_savings_table_and_its_notes():
    group = pd.DataFrame(
        {
            "condition": ["a", "c", "p", "x"],
            "threshold": [1.2, 0.5, 3.0, np.nan],
            "ci_low": [0.9, 0.4, 2.0, np.nan],
            "ci_high": [1.6, 0.6, 4.0, np.nan],
        }
    )
    conditions = {
        "a": {"name": "a", "level_variable": "strength", "fixation_deg": [0, 0]},
        "c": {
            "name": "c",
            "level_variable": "radius_shrink",
            "periphery_factor": 2,
            "fixation_deg": [0, 0],
        },
        "p": {"name": "p", "level_variable": "periphery_factor", "circle_radius": 0.33},
    }
    t = token_savings(
        group=group, conditions=conditions, display=DISPLAY, image_size_px=(1024, 1024), patch_px=16
    ).set_index("condition")
    a = t.loc["a"]
    assert a.tokens_full == 4096 and a.savings_pct == pytest.approx(100 * (1 - a.token_ratio))
    assert a.token_ratio_at_ci_high <= a.token_ratio <= a.token_ratio_at_ci_low
    assert 0 < t.loc["c"].token_ratio < 1
    assert "discrete" in t.loc["p"].note and np.isnan(t.loc["p"].token_ratio)
    assert (
        "no group threshold" in t.loc["x"].note
        and "not described in the sidecar" in t.loc["x"].note
    )


# A circle condition at the image centre: at 1024 px, radius_shrink 0.75 (radius 0.25) is 1384
# tokens by the kit's rule and 1312 by the release's (docs/flux2_release.md).
CIRCLE = {
    "name": "circle",
    "layout_mode": "circle",
    "level_variable": "radius_shrink",
    "periphery_factor": 2,
    "fixation_deg": [0.0, 0.0],
}
RULE_TOKENS = {"kit": 1384, "release": 1312}


def _sidecar(*, protocol_lora=None, runs=None) -> dict:
    sidecar = {
        "display": DISPLAY,
        "image_size_px": [1024, 1024],
        "patch_px": 16,
        "conditions": {"circle": CIRCLE},
        "protocol": {"stimulus": {"model": "/models/klein", "lora": protocol_lora}},
    }
    if runs is not None:
        sidecar["runs"] = runs
    return sidecar


@pytest.mark.parametrize(
    ("sidecar", "rules"),
    [
        (_sidecar(), "kit"),
        (_sidecar(protocol_lora="/loras/fov_random.safetensors"), "release"),
        # What the runs' generator records say wins over the protocol copy; the last run's.
        (
            _sidecar(runs=[{"generator": {"model": "/m", "lora": "/loras/fov.safetensors"}}]),
            "release",
        ),
        (
            _sidecar(
                protocol_lora="/loras/fov.safetensors",
                runs=[{"generator": {"model": "/m", "lora": None}}, {"breaks": []}],
            ),
            "kit",
        ),
        # A run record from before ``lora`` was recorded: the protocol copy says.
        (
            _sidecar(protocol_lora="/loras/fov.safetensors", runs=[{"generator": {"model": "/m"}}]),
            "release",
        ),
        ({}, "kit"),
    ],
)
def test_the_sidecar_says_which_token_rules_generated(sidecar, rules):
    from analysis.design import sidecar_token_rules

    assert sidecar_token_rules(sidecar) == rules


@pytest.mark.parametrize("rules", ["kit", "release"])
def test_savings_count_circle_tokens_by_the_rule_generation_used(rules):
    """Through the report's stage: the design read from a sidecar with (release) or without
    (kit) a LoRA gives the savings table and the token curve their counts."""
    from types import SimpleNamespace

    from analysis.design import design_of
    from analysis.report_stages import token_savings_at_threshold

    lora = "/loras/fov_random.safetensors" if rules == "release" else None
    session = SimpleNamespace(
        observer="human", task="t", sidecar=_sidecar(protocol_lora=lora), protocol_sha256=None
    )
    dataset = SimpleNamespace(sessions=[session], trials=pd.DataFrame({"condition": ["circle"]}))
    design, notes = design_of(dataset)
    assert design.token_rules == rules and not notes
    a = SimpleNamespace(
        design=design,
        group=pd.DataFrame(
            {"condition": ["circle"], "threshold": [0.75], "ci_low": [0.5], "ci_high": [0.75]}
        ),
        analysed_human=pd.DataFrame(),
        conditions=["circle"],
        human=pd.DataFrame({"condition": ["circle", "circle"], "level": [0.5, 0.75]}),
        log_axis=False,
    )
    token_savings_at_threshold(a)
    row = a.savings.set_index("condition").loc["circle"]
    assert (row.tokens_at_threshold, row.tokens_full) == (RULE_TOKENS[rules], 4096)
    assert row.token_ratio_at_ci_high == RULE_TOKENS[rules] / 4096
    grid, ratios = a.token_curves["circle"]
    assert grid[-1] == 0.75 and ratios[-1] == RULE_TOKENS[rules] / 4096
    direct = layout_tokens(
        condition=CIRCLE,
        level=0.75,
        display=DISPLAY,
        image_size_px=(1024, 1024),
        patch_px=16,
        token_rules=rules,
    )
    assert direct == (RULE_TOKENS[rules], 4096)


def test_sessions_with_and_without_a_lora_are_noted():
    from types import SimpleNamespace

    from analysis.design import design_of

    sessions = [
        SimpleNamespace(
            observer="human", task="t", sidecar=_sidecar(protocol_lora=lora), protocol_sha256=None
        )
        for lora in ("/loras/fov.safetensors", None)
    ]
    trials = pd.DataFrame({"condition": ["circle"]})
    design, notes = design_of(SimpleNamespace(sessions=sessions, trials=trials))
    assert design.token_rules == "release"
    assert any("with and without a LoRA" in n for n in notes)
