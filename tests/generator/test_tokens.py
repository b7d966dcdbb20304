import numpy as np
import pytest
import torch
import torch.nn.functional as F

from generator import LayoutSpec, StimulusGeometry, build_layout, default_display, pack, unpack

SEED = 1234


def _layout(gaze=(200.0, 300.0), size=512, spec=None):
    geometry = StimulusGeometry(
        display=default_display(), image_width_px=size, image_height_px=size
    )
    return build_layout(
        geometry=geometry, gaze_px=gaze, spec=spec or LayoutSpec(strength=1.0), patch_px=16
    )


def _fine_mask(layout, level=1):
    return (
        torch.from_numpy(layout.level_map() == level)
        .repeat_interleave(16, 0)
        .repeat_interleave(16, 1)
    )


def test_pack_unpack_identity_on_fine_blocks():
    print(f"seed {SEED}")
    x = torch.randn(2, 3, 512, 512, generator=torch.Generator().manual_seed(SEED))
    layout = _layout()
    y = unpack(pack(x, layout, p=16), layout, p=16)
    mask = _fine_mask(layout)
    assert mask.any() and (~mask).any()
    assert torch.equal(y[:, :, mask], x[:, :, mask])
    full = _layout(spec=LayoutSpec(mode="full"), gaze=None)
    assert torch.equal(unpack(pack(x, full, p=16), full, p=16), x)


def test_coarse_tokens_hold_exact_block_means():
    x = torch.randn(1, 3, 512, 512, generator=torch.Generator().manual_seed(SEED))
    layout = _layout()
    tokens = pack(x, layout, p=16)
    for i in np.flatnonzero(layout.levels > 1)[:50]:
        r, c, k = (int(v) for v in (layout.rows[i], layout.cols[i], layout.levels[i]))
        block = x[:, :, r * 16 : (r + k) * 16, c * 16 : (c + k) * 16]
        expected = F.avg_pool2d(block, k).reshape(-1)  # (C, 16, 16) channel-major
        torch.testing.assert_close(tokens[0, i], expected, rtol=1e-5, atol=1e-6)


def test_no_seams_on_a_smooth_field():
    yy, xx = torch.meshgrid(torch.arange(512.0), torch.arange(512.0), indexing="ij")
    field = torch.sin(xx / 45) * torch.cos(yy / 60)
    x = field.expand(1, 3, 512, 512).contiguous()
    layout = _layout()
    y = unpack(pack(x, layout, p=16), layout, p=16)
    # The steepest step anywhere (level borders included) stays within the field's own slope
    # plus a small margin; a hard block edge would jump by up to the block's variation.
    field_step = max(
        (x[..., 1:] - x[..., :-1]).abs().max(), (x[..., 1:, :] - x[..., :-1, :]).abs().max()
    )
    out_step = max(
        (y[..., 1:] - y[..., :-1]).abs().max(), (y[..., 1:, :] - y[..., :-1, :]).abs().max()
    )
    assert out_step <= 1.5 * field_step
    assert (y - x).abs().max() < 0.05


def test_noise_tokens_stay_unit_variance_per_level():
    z = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(SEED))
    layout = _layout(gaze=(512.0, 512.0), size=1024)
    tokens = pack(z, layout, p=16, noise=True)
    for level in (1, 2, 4, 8):
        std = tokens[0, torch.from_numpy(layout.levels == level)].std().item()
        assert std == pytest.approx(1.0, abs=0.03), level


def test_same_seed_same_noise_where_layouts_agree():
    from generator.loading import load_generator

    generator = load_generator("tiny")
    a, b = _layout(gaze=(150.0, 200.0)), _layout(gaze=(360.0, 300.0))
    na, nb = generator.noise_tokens(a, seed=7), generator.noise_tokens(b, seed=7)

    def key(layout):
        blocks = zip(layout.rows, layout.cols, layout.levels, strict=True)
        return {(int(r), int(c), int(k)): i for i, (r, c, k) in enumerate(blocks)}

    ka, kb = key(a), key(b)
    shared = set(ka) & set(kb)
    assert len(shared) > 20
    for block in shared:
        assert torch.equal(na[0, ka[block]], nb[0, kb[block]])


@pytest.mark.parametrize("size", [720, 1040])
def test_pack_unpack_on_a_grid_the_levels_do_not_divide(size):
    """45 and 65 tokens a side: level-k blocks stop short of the edge, whose strip holds finer
    tokens; pack and unpack keep every fine token and every block mean."""
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(SEED))
    layout = _layout(gaze=(size / 3, size / 2), size=size)
    assert layout.levels.max() == 8
    tokens = pack(x, layout, p=16)
    y = unpack(tokens, layout, p=16)
    assert y.shape == x.shape
    mask = _fine_mask(layout)
    assert torch.equal(y[:, :, mask], x[:, :, mask])
    for i in np.flatnonzero(layout.levels > 1):
        r, c, k = (int(v) for v in (layout.rows[i], layout.cols[i], layout.levels[i]))
        block = x[:, :, r * 16 : (r + k) * 16, c * 16 : (c + k) * 16]
        torch.testing.assert_close(
            tokens[0, i], F.avg_pool2d(block, k).reshape(-1), rtol=1e-5, atol=1e-6
        )
