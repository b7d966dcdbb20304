"""One definition of which token rules generate (and count) a layout: the release's circle rule
with a LoRA, the kit's without (generator.token_rules)."""

from __future__ import annotations

import numpy as np
import pytest

from generator.errors import FoveaError
from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec, build_layout
from generator.release_layout import release_circle_layout
from generator.token_rules import default_token_rules, token_rules_layout

GEOMETRY = StimulusGeometry(display=default_display(), image_width_px=1024, image_height_px=1024)
CENTRE = (512.0, 512.0)


def test_the_default_is_the_release_rule_with_a_lora_only():
    assert default_token_rules(lora=True) == "release"
    assert default_token_rules(lora=False) == "kit"


@pytest.mark.parametrize(("radius", "kit", "release"), [(0.25, 1384, 1312), (0.5, 2368, 2200)])
def test_circle_layouts_follow_the_rule(radius, kit, release):
    """docs/flux2_release.md's counts: 1024 px, 1/2x periphery, gaze at the centre."""
    spec = LayoutSpec(mode="circle", circle_radius=radius, periphery_factor=2)
    args = dict(geometry=GEOMETRY, gaze_px=CENTRE, spec=spec, patch_px=16)
    by_kit, by_release = (token_rules_layout(rules, **args) for rules in ("kit", "release"))
    assert (by_kit.num_tokens, by_release.num_tokens) == (kit, release)
    assert np.array_equal(by_kit.levels, build_layout(**args).levels)
    expected = release_circle_layout(**args)
    assert np.array_equal(by_release.rows, expected.rows)
    assert np.array_equal(by_release.levels, expected.levels)


@pytest.mark.parametrize(
    ("spec", "gaze"),
    [(LayoutSpec(mode="acuity", strength=1.5), CENTRE), (LayoutSpec(mode="full"), None)],
)
def test_acuity_and_full_layouts_are_the_kits_under_both_rules(spec, gaze):
    args = dict(geometry=GEOMETRY, gaze_px=gaze, spec=spec, patch_px=16)
    kit, release = (token_rules_layout(rules, **args) for rules in ("kit", "release"))
    assert kit.num_tokens == release.num_tokens == build_layout(**args).num_tokens
    assert np.array_equal(kit.levels, release.levels)


def test_an_unknown_rule_is_refused():
    with pytest.raises(FoveaError, match="token_rules must be kit or release"):
        token_rules_layout(
            "paper", geometry=GEOMETRY, gaze_px=CENTRE, spec=LayoutSpec(mode="full"), patch_px=16
        )
