import math

import numpy as np
import pytest

from generator import (
    AcuityModel,
    FoveaError,
    LayoutSpec,
    StimulusGeometry,
    build_layout,
    default_display,
)
from generator.layout import fine_edge_strip_note


def _geometry(size=1024):
    return StimulusGeometry(display=default_display(), image_width_px=size, image_height_px=size)


def _assert_partition(layout):
    covered = np.zeros((layout.grid_h, layout.grid_w), dtype=int)
    for r, c, k in zip(layout.rows, layout.cols, layout.levels, strict=True):
        assert r % k == 0 and c % k == 0, "blocks are quadtree-aligned"
        covered[r : r + k, c : c + k] += 1
    assert (covered == 1).all(), "blocks tile the grid exactly once"


@pytest.mark.parametrize("strength", [0.25, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("gaze", [(512.0, 512.0), (200.0, 700.0), (-300.0, 40.0)])
def test_acuity_layout_is_a_conservative_quadtree(strength, gaze):
    geometry = _geometry()
    spec = LayoutSpec(strength=strength)
    layout = build_layout(geometry=geometry, gaze_px=gaze, spec=spec, patch_px=16)
    _assert_partition(layout)
    ppd = geometry.display.pixels_per_degree
    model = AcuityModel()
    for r, c, k in zip(layout.rows, layout.cols, layout.levels, strict=True):
        if k == 1:
            continue
        x0, y0, side = c * 16, r * 16, k * 16
        nx, ny = np.clip(gaze[0], x0, x0 + side), np.clip(gaze[1], y0, y0 + side)
        ecc = geometry.eccentricity_deg(nx, ny, gaze)
        # k-times coarser sampling carries ppd / (2k) cycles/deg: the eye must not see beyond it.
        assert model.cutoff_cpd(ecc, strength=strength) <= ppd / (2 * k) * (1 + 1e-9)


def test_token_ratio_falls_with_strength_and_matches_design_notes():
    ratios = [
        build_layout(
            geometry=_geometry(), gaze_px=(512, 512), spec=LayoutSpec(strength=s), patch_px=16
        ).token_ratio
        for s in (0.25, 0.5, 1.0, 2.0)
    ]
    assert ratios == sorted(ratios, reverse=True)
    # The oracle study (docs/design.md section 8): token ratios 0.32, 0.14, 0.065, 0.031 here.
    assert ratios == pytest.approx([0.32, 0.14, 0.065, 0.031], rel=0.2)


def test_full_layout_is_the_plain_grid():
    layout = build_layout(
        geometry=_geometry(512), gaze_px=None, spec=LayoutSpec(mode="full"), patch_px=16
    )
    assert layout.num_tokens == 32 * 32 and layout.token_ratio == 1.0
    np.testing.assert_array_equal(layout.positions[:, 0], np.repeat(np.arange(32), 32))
    np.testing.assert_array_equal(layout.positions[:, 1], np.tile(np.arange(32), 32))


def test_coarse_positions_are_block_centres():
    layout = build_layout(geometry=_geometry(), gaze_px=(512, 512), spec=LayoutSpec(), patch_px=16)
    k = layout.levels
    np.testing.assert_allclose(layout.positions[:, 0], layout.rows + (k - 1) / 2)
    assert np.any(layout.positions % 1 == 0.5)


def _closed_form_circle_tokens(grid, factor, radius_px, block_px):
    """Blocks of side ``factor`` are fine when their corner nearest the centre lies within the
    radius: per quadrant, lattice points (i, j) >= 0 with (i^2 + j^2) block_px^2 < radius^2."""
    half = grid // factor // 2
    rho = radius_px / block_px
    fine_blocks = 0
    for i in range(half):
        if i < rho:
            fine_blocks += min(half, math.ceil(math.sqrt(rho * rho - i * i)))
    fine_blocks *= 4
    blocks = (grid // factor) ** 2
    return blocks - fine_blocks + fine_blocks * factor * factor


@pytest.mark.parametrize("factor", [2, 4])
@pytest.mark.parametrize("radius", [0.2, 0.33, 0.47])
def test_circle_token_counts_match_closed_form(factor, radius):
    geometry = _geometry(1024)
    spec = LayoutSpec(mode="circle", circle_radius=radius, periphery_factor=factor)
    layout = build_layout(geometry=geometry, gaze_px=(512, 512), spec=spec, patch_px=16)
    _assert_partition(layout)
    radius_px = radius * math.hypot(1024, 1024) / 2
    assert layout.num_tokens == _closed_form_circle_tokens(64, factor, radius_px, 16 * factor)
    assert set(layout.level_counts()) == {1, factor}


@pytest.mark.parametrize("mode", ["acuity", "circle"])
def test_layout_mirrors_with_the_gaze(mode):
    geometry = _geometry(1024)
    spec = LayoutSpec(mode=mode, strength=1.0)
    a = build_layout(geometry=geometry, gaze_px=(300.0, 420.0), spec=spec, patch_px=16).level_map()
    b = build_layout(
        geometry=geometry, gaze_px=(1024 - 300.0, 420.0), spec=spec, patch_px=16
    ).level_map()
    c = build_layout(
        geometry=geometry, gaze_px=(300.0, 1024 - 420.0), spec=spec, patch_px=16
    ).level_map()
    np.testing.assert_array_equal(a, b[:, ::-1])
    np.testing.assert_array_equal(a, c[::-1, :])


def test_padding_and_zero_strength_widen_the_fovea():
    geometry = _geometry()
    base = build_layout(geometry=geometry, gaze_px=(512, 512), spec=LayoutSpec(), patch_px=16)
    padded = build_layout(
        geometry=geometry, gaze_px=(512, 512), spec=LayoutSpec(padding_deg=1.0), patch_px=16
    )
    assert padded.num_tokens > base.num_tokens
    none = build_layout(
        geometry=geometry, gaze_px=(512, 512), spec=LayoutSpec(strength=0.0), patch_px=16
    )
    assert none.num_tokens == none.num_tokens_full


def test_bad_inputs_name_the_value():
    with pytest.raises(FoveaError, match="1000 px does not divide into 16 px tokens"):
        build_layout(geometry=_geometry(1000), gaze_px=(5, 5), spec=LayoutSpec(), patch_px=16)
    with pytest.raises(FoveaError, match="outside"):
        build_layout(geometry=_geometry(), gaze_px=(99999, 5), spec=LayoutSpec(), patch_px=16)
    with pytest.raises(FoveaError, match="strength"):
        LayoutSpec(strength=-1)
    with pytest.raises(FoveaError, match="periphery factor"):
        LayoutSpec(mode="circle", periphery_factor=3)


@pytest.mark.parametrize("size", [720, 800, 1040])
@pytest.mark.parametrize(
    "spec", [LayoutSpec(), LayoutSpec(mode="circle"), LayoutSpec(mode="circle", periphery_factor=4)]
)
def test_a_grid_the_top_level_does_not_divide_is_still_foveated(size, spec):
    """720 px is 45 tokens a side, 800 px 50, 1040 px 65: the layout used to fall back to the
    largest level dividing the grid (1 for 45 and 65, 2 for 50), so such an image was its own twin
    (or barely foveated) without a word. Only the edge's strip is finer now."""
    layout = build_layout(
        geometry=_geometry(size), gaze_px=(size / 3, size / 2), spec=spec, patch_px=16
    )
    _assert_partition(layout)
    top = spec.periphery_factor if spec.mode == "circle" else spec.max_level
    assert layout.levels.max() == top
    # Without foveation every token would be fine; a circle keeps about 0.3-0.4 of them.
    assert layout.token_ratio < 0.5


@pytest.mark.parametrize(
    "width, height, edges",
    [(400, 400, ["right", "bottom"]), (720, 512, ["right"]), (512, 336, ["bottom"])],
)
def test_an_odd_token_count_leaves_a_fine_strip_at_that_edge_and_is_noted(width, height, edges):
    """The note fovea check, generate and mask give says what the layout does: an odd number of
    16 px tokens on a side leaves its last column (row) all full-resolution tokens."""
    geometry = StimulusGeometry(
        display=default_display(), image_width_px=width, image_height_px=height
    )
    layout = build_layout(geometry=geometry, gaze_px=(60.0, 60.0), spec=LayoutSpec(), patch_px=16)
    level_at = np.zeros((layout.grid_h, layout.grid_w), dtype=int)  # each token cell's level
    for r, c, k in zip(layout.rows, layout.cols, layout.levels, strict=True):
        level_at[r : r + k, c : c + k] = k
    last = {"right": level_at[:, -1], "bottom": level_at[-1, :]}
    assert [edge for edge, levels in last.items() if (levels == 1).all()] == edges
    note = fine_edge_strip_note(width, height, patch_px=16)
    assert f"so its {' and '.join(edges)} edge" in note
    assert fine_edge_strip_note(768, 512, patch_px=16) == ""
    assert fine_edge_strip_note(80, 80, patch_px=16) == ""  # no coarse block to split


def test_the_fine_strip_note_suggests_no_size_larger_than_the_display():
    """fovea check's note suggested sizes the display cannot show 1:1 (1424 px on a 1440 px tall
    screen: '1408 or 1536'); given the display, it leaves those out."""
    assert "(1424 px: 1408 or 1536)" in fine_edge_strip_note(1424, 1424, patch_px=16)
    note = fine_edge_strip_note(1424, 1424, patch_px=16, display_px=(2560, 1440))
    assert note.endswith("(1424 px: 1408)"), note
    note = fine_edge_strip_note(2544, 1424, patch_px=16, display_px=(2560, 1440))
    assert note.endswith("(1424 px: 1408; 2544 px: 2432 or 2560)"), note


@pytest.mark.parametrize("size", [64, 128])
def test_a_small_images_layout_legend_stays_inside_it(size):
    """`fovea stimuli sheet` of a 64 px FLUX.2 set drew the layout legend in 11 px text, its
    lines running past the image ('total 196/25'): the legend now shrinks to fit, so the
    image's last column is the same with and without it."""
    from generator.draw import draw_layout

    geometry = _geometry(size)
    spec = LayoutSpec(mode="acuity", strength=2.0)
    layout = build_layout(geometry=geometry, gaze_px=(size / 2, size / 2), spec=spec, patch_px=4)
    image = np.full((size, size, 3), 200, np.uint8)
    with_legend = np.asarray(draw_layout(layout, image=image))
    without = np.asarray(draw_layout(layout, image=image, legend=False))
    assert (with_legend != without).any()  # the legend is drawn
    assert (with_legend[:, -2:] == without[:, -2:]).all()  # and ends inside the image
