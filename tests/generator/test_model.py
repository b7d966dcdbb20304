"""The scene-conditioned default model: forward shapes and positions, the residual on the scene,
the refiner, weights I/O, LoRA merging, loading from a weights folder. Tiny random models only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from generator.codecs import to_uint8_image
from generator.denoiser import layout_ids
from generator.errors import FoveaError
from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec, build_layout
from generator.models.default import DefaultModel, ModelConfig, Refiner, scene_inputs
from generator.models.weights_io import (
    BASE_FILE,
    LORA_FILE,
    build_generator,
    load_default_generator,
    load_model,
    merge_lora,
    save_weights,
)
from generator.scene import Scene, downsample_to_scene, upsample_scene
from generator.tokens import pack

SMALL = ModelConfig(
    heads=1,
    head_dim=32,
    double_blocks=1,
    single_blocks=1,
    rope_axes=(8, 12, 12),
    refiner_channels=4,
    steps=2,
)
REFERENCE = dataclasses.replace(SMALL, scene_conditioning="reference")


def _model(config: ModelConfig = SMALL, seed: int = 0) -> DefaultModel:
    """A model whose zero-initialised layers (Flux's output layers, the refiner's last conv)
    have random values, so that every part acts."""
    torch.manual_seed(seed)
    model = DefaultModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.02)
    return model


def _layout(px: int, mode: str = "acuity"):
    geometry = StimulusGeometry(display=default_display(), image_width_px=px, image_height_px=px)
    if mode == "full":
        return build_layout(
            geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"), patch_px=16
        )
    return build_layout(
        geometry=geometry,
        gaze_px=(px * 0.3, px * 0.6),
        spec=LayoutSpec(mode="acuity", strength=2.0),
        patch_px=16,
    )


def _images(count: int, px: int, seed: int) -> torch.Tensor:
    """Smooth random images in [-1, 1] (B, 3, px, px)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, px // 8, px // 8, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(coarse, size=(px, px), mode="bilinear").clamp(-1, 1)


def _forward(model, tokens, layout, scene, t=0.5):
    """The model on ``tokens`` with the scene inputs of ``scene`` (B, 3, h, w)."""
    inputs = scene_inputs(scene, layout, model.config_)
    ids = torch.as_tensor(layout_ids(layout), dtype=torch.float32)
    with torch.no_grad():
        return model(
            tokens,
            scene_tokens=inputs.scene_tokens,
            img_ids=ids,
            t=torch.full((tokens.shape[0],), t),
            reference=inputs.reference,
            reference_ids=inputs.reference_ids,
        )


@pytest.mark.parametrize("config", [SMALL, REFERENCE], ids=["channels", "reference"])
def test_forward_on_a_mixed_layout_returns_one_patch_per_token(config):
    layout = _layout(256)
    assert len(set(layout.levels.tolist())) > 1
    x = _images(2, 256, seed=0)
    scene = downsample_to_scene(x, config.scene_factor)
    assert scene.shape == (2, 3, 64, 64)
    noisy = pack(
        torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(1)), layout, p=16
    )
    out = _forward(_model(config), noisy, layout, scene)
    assert out.shape == (2, layout.num_tokens, 768)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("config", [SMALL, REFERENCE], ids=["channels", "reference"])
def test_an_untrained_model_returns_the_upsampled_scene_tokens_exactly(config):
    torch.manual_seed(0)
    model = DefaultModel(config).eval()  # output layer at zero, as training starts
    layout = _layout(128)
    scene = downsample_to_scene(_images(1, 128, seed=2), config.scene_factor)
    noisy = torch.randn(1, layout.num_tokens, 768, generator=torch.Generator().manual_seed(3))
    expected = pack(upsample_scene(scene, height=128, width=128), layout, p=16)
    out = _forward(model, noisy, layout, scene)
    assert torch.equal(out, expected)
    assert torch.equal(scene_inputs(scene, layout, config).scene_tokens, expected)


def test_the_untrained_generator_draws_the_bicubic_scene():
    torch.manual_seed(0)
    gen = build_generator(DefaultModel(SMALL).eval(), model_id="untrained", steps=2)
    original = _images(1, 128, seed=4)
    pixels = to_uint8_image(downsample_to_scene(original, SMALL.scene_factor))
    scene = Scene(pixels=pixels, source="test")
    geometry = StimulusGeometry(display=default_display(), image_width_px=128, image_height_px=128)
    out = gen.generate(
        seed=1, geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"), scene=scene
    )
    scene_t = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 127.5 - 1
    bicubic = to_uint8_image(upsample_scene(scene_t, height=128, width=128))
    diff = np.abs(out.image.astype(int) - bicubic.astype(int))
    assert diff.max() <= 1, diff.max()
    assert out.sidecar["scene"] == scene.record()


def test_the_refiner_is_the_identity_at_initialisation_and_knows_token_borders():
    refiner = Refiner(patch_px=16, channels=4)
    image, scene_up = _images(2, 64, seed=5), _images(2, 64, seed=6)
    with torch.no_grad():
        assert torch.equal(refiner(image, scene_up), image)
        phase = refiner.phase(64, 48, device="cpu", dtype=torch.float32)
        assert phase.shape == (1, 4, 64, 48)
        torch.testing.assert_close(phase[..., :16, :], phase[..., 16:32, :])  # period: a token
        torch.testing.assert_close(phase[..., :, :16], phase[..., :, 32:48])
        assert not torch.allclose(phase[..., :8, :], phase[..., 8:16, :])
        refiner.conv2.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(7))
        assert not torch.allclose(refiner(image, scene_up), image)
    plain = DefaultModel(dataclasses.replace(SMALL, refiner_channels=0))
    assert plain.refiner is None and torch.equal(plain.refine(image, scene_up), image)


def test_permuting_tokens_with_their_positions_permutes_the_output():
    layout = _layout(256)
    model = _model()
    scene = downsample_to_scene(_images(1, 256, seed=8), 4)
    inputs = scene_inputs(scene, layout, SMALL)
    tokens = torch.randn(1, layout.num_tokens, 768, generator=torch.Generator().manual_seed(1))
    ids = torch.as_tensor(layout_ids(layout), dtype=torch.float32)
    perm = torch.randperm(layout.num_tokens, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([0.5])
    with torch.no_grad():
        a = model(tokens, scene_tokens=inputs.scene_tokens, img_ids=ids, t=t)
        b = model(
            tokens[:, perm], scene_tokens=inputs.scene_tokens[:, perm], img_ids=ids[perm], t=t
        )
        moved = ids.clone()
        moved[:3, 1] += 3.0
        c = model(tokens, scene_tokens=inputs.scene_tokens, img_ids=moved, t=t)
    torch.testing.assert_close(a[:, perm], b, atol=2e-5, rtol=1e-4)
    assert not torch.allclose(a, c, atol=1e-4)


def test_a_scene_of_the_wrong_size_is_a_one_line_error():
    with pytest.raises(FoveaError, match=r"needs a scene 4x smaller \(32x32 px\)"):
        scene_inputs(torch.zeros(1, 3, 64, 64), _layout(128, "full"), SMALL)


@pytest.mark.parametrize("config", [SMALL, REFERENCE], ids=["channels", "reference"])
def test_save_and_load_round_trip_gives_the_same_outputs(tmp_path, config):
    model = _model(config)
    save_weights(model, tmp_path / "m.safetensors", dtype=torch.float32)
    loaded = load_model(tmp_path / "m.safetensors")
    assert loaded.config_ == config
    layout = _layout(128, "full")
    scene = downsample_to_scene(_images(1, 128, seed=9), 4)
    tokens = torch.randn(1, layout.num_tokens, 768, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(
        _forward(model, tokens, layout, scene), _forward(loaded, tokens, layout, scene)
    )
    image, scene_up = _images(1, 64, seed=10), _images(1, 64, seed=11)
    with torch.no_grad():
        torch.testing.assert_close(model.refine(image, scene_up), loaded.refine(image, scene_up))


def test_merged_lora_matches_the_peft_adapter(tmp_path):
    from peft import LoraConfig, get_peft_model_state_dict
    from safetensors.torch import save_file

    model = _model()
    save_weights(model, tmp_path / "base.safetensors", dtype=torch.float32)
    model.transformer.add_adapter(
        LoraConfig(
            r=4,
            lora_alpha=8,
            init_lora_weights="gaussian",
            target_modules=["to_q", "proj_mlp", "linear", "x_embedder"],
        )
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05, generator=torch.Generator().manual_seed(len(name)))
    state = {f"transformer.{k}": v for k, v in get_peft_model_state_dict(model.transformer).items()}
    save_file(state, str(tmp_path / "lora.safetensors"), metadata={"lora_scale": str(8 / 4)})
    layout = _layout(128)
    scene = downsample_to_scene(_images(1, 128, seed=12), 4)
    tokens = torch.randn(1, layout.num_tokens, 768, generator=torch.Generator().manual_seed(4))
    with_adapter = _forward(model, tokens, layout, scene)
    merged = load_model(tmp_path / "base.safetensors", lora=tmp_path / "lora.safetensors")
    plain = load_model(tmp_path / "base.safetensors")
    torch.testing.assert_close(
        _forward(merged, tokens, layout, scene), with_adapter, atol=1e-4, rtol=1e-3
    )
    assert not torch.allclose(_forward(plain, tokens, layout, scene), with_adapter, atol=1e-3)
    with pytest.raises(FoveaError, match="does not have"):
        bad = {
            "transformer.nope.lora_A.weight": torch.zeros(1, 2),
            "transformer.nope.lora_B.weight": torch.zeros(2, 1),
        }
        save_file(bad, str(tmp_path / "bad.safetensors"))
        merge_lora(plain, tmp_path / "bad.safetensors")


def test_a_weights_folder_loads_as_a_generator_of_foveated_and_full_images(tmp_path):
    from peft import LoraConfig, get_peft_model_state_dict
    from safetensors.torch import save_file

    model = _model()
    save_weights(model, tmp_path / BASE_FILE)
    base = load_default_generator(weights_dir=tmp_path, variant="base")
    assert base.model_id == "default-base" and base.takes_scene and base.scene_factor == 4
    with pytest.raises(FoveaError, match="variant 'base'"):
        load_default_generator(weights_dir=tmp_path)  # no adapter yet
    model.transformer.add_adapter(LoraConfig(r=2, lora_alpha=2, target_modules=["to_q"]))
    state = {f"transformer.{k}": v for k, v in get_peft_model_state_dict(model.transformer).items()}
    save_file(state, str(tmp_path / LORA_FILE), metadata={"lora_scale": "1.0"})
    gen = load_default_generator(weights_dir=tmp_path)
    assert gen.model_id == "default-foveated"
    geometry = StimulusGeometry(display=default_display(), image_width_px=128, image_height_px=128)
    scene = Scene(pixels=np.full((32, 32, 3), 90, dtype=np.uint8), source="grey")
    fov = gen.generate(
        seed=3,
        geometry=geometry,
        gaze_px=(40.0, 40.0),
        spec=LayoutSpec(mode="acuity", strength=4.0),
        scene=scene,
    )
    full = gen.generate(
        seed=3, geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"), scene=scene
    )
    assert fov.image.shape == full.image.shape == (128, 128, 3)
    assert fov.tokens < full.tokens
    assert fov.sidecar["scene"]["source"] == "grey"
    with pytest.raises(FoveaError, match="does not fit"):
        gen.generate(
            seed=3,
            geometry=geometry,
            gaze_px=None,
            spec=LayoutSpec(mode="full"),
            scene=Scene(pixels=np.zeros((16, 16, 3), dtype=np.uint8), source="small"),
        )


def test_missing_weights_give_a_one_line_error(tmp_path):
    with pytest.raises(FoveaError, match="holds no default model .default-base.safetensors is"):
        load_default_generator(weights_dir=tmp_path)
