"""The default model: forward shapes and positions, weights I/O, LoRA merging, offline loading."""

from __future__ import annotations

import pytest
import torch

from generator.denoiser import layout_ids
from generator.errors import FoveaError
from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec, build_layout
from generator.models.default import (
    ClassEncoder,
    DefaultModel,
    DefaultWeights,
    ModelConfig,
    build_generator,
    load_default_generator,
    load_model,
    merge_lora,
    save_weights,
)
from generator.tokens import pack

SMALL = ModelConfig(
    heads=2, head_dim=32, double_blocks=1, single_blocks=1, rope_axes=(8, 12, 12), steps=2
)


def _model(seed: int = 0) -> DefaultModel:
    torch.manual_seed(seed)
    model = DefaultModel(SMALL).eval()
    with torch.no_grad():  # Flux zero-initialises its output layers; give them values
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


def _forward(model, tokens, layout, t=0.5, cls=0):
    ids = torch.as_tensor(layout_ids(layout), dtype=torch.float32)
    with torch.no_grad():
        return model(
            tokens,
            img_ids=ids,
            txt_ids=torch.zeros(1, 3),
            t=torch.full((tokens.shape[0],), t),
            class_ids=torch.full((tokens.shape[0],), cls, dtype=torch.long),
        )


def test_forward_on_a_mixed_layout_returns_one_patch_per_token():
    layout = _layout(256)
    assert len(set(layout.levels.tolist())) > 1
    x = torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    tokens = pack(x, layout, p=16)
    out = _forward(_model(), tokens, layout)
    assert out.shape == (2, layout.num_tokens, 768)
    assert torch.isfinite(out).all()


def test_permuting_tokens_with_their_positions_permutes_the_output():
    layout = _layout(256)
    model = _model()
    tokens = pack(
        torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(1)), layout, p=16
    )
    ids = torch.as_tensor(layout_ids(layout), dtype=torch.float32)
    perm = torch.randperm(layout.num_tokens, generator=torch.Generator().manual_seed(2))
    kw = dict(txt_ids=torch.zeros(1, 3), t=torch.tensor([0.5]), class_ids=torch.tensor([1]))
    with torch.no_grad():
        a = model(tokens, img_ids=ids, **kw)
        b = model(tokens[:, perm], img_ids=ids[perm], **kw)
        moved = ids.clone()
        moved[:3, 1] += 3.0
        c = model(tokens, img_ids=moved, **kw)
    torch.testing.assert_close(a[:, perm], b, atol=2e-5, rtol=1e-4)
    assert not torch.allclose(a, c, atol=1e-4)


def test_save_and_load_round_trip_gives_the_same_outputs(tmp_path):
    model = _model()
    save_weights(model, tmp_path / "m.safetensors", dtype=torch.float32)
    loaded = load_model(tmp_path / "m.safetensors")
    layout = _layout(128, "full")
    tokens = torch.randn(1, layout.num_tokens, 768, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(_forward(model, tokens, layout), _forward(loaded, tokens, layout))
    assert loaded.config_ == SMALL


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
            target_modules=["to_q", "proj_mlp", "linear"],
        )
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05, generator=torch.Generator().manual_seed(len(name)))
    state = {f"transformer.{k}": v for k, v in get_peft_model_state_dict(model.transformer).items()}
    save_file(state, str(tmp_path / "lora.safetensors"), metadata={"lora_scale": str(8 / 4)})
    layout = _layout(128)
    tokens = torch.randn(1, layout.num_tokens, 768, generator=torch.Generator().manual_seed(4))
    with_adapter = _forward(model, tokens, layout)
    merged = load_model(tmp_path / "base.safetensors", lora=tmp_path / "lora.safetensors")
    plain = load_model(tmp_path / "base.safetensors")
    torch.testing.assert_close(_forward(merged, tokens, layout), with_adapter, atol=1e-4, rtol=1e-3)
    assert not torch.allclose(_forward(plain, tokens, layout), with_adapter, atol=1e-3)
    with pytest.raises(FoveaError, match="does not have"):
        bad = {
            "transformer.nope.lora_A.weight": torch.zeros(1, 2),
            "transformer.nope.lora_B.weight": torch.zeros(2, 1),
        }
        save_file(bad, str(tmp_path / "bad.safetensors"))
        merge_lora(plain, tmp_path / "bad.safetensors")


def test_class_encoder_accepts_indices_names_and_none_and_rejects_others():
    enc = ClassEncoder(_model())
    assert enc.class_index(0) == 0
    assert enc.class_index(SMALL.classes[1]) == 1
    assert enc.class_index(None) == SMALL.null_class
    with pytest.raises(FoveaError, match="out of range"):
        enc.class_index(7)
    with pytest.raises(FoveaError, match="unknown class"):
        enc.class_index("dogs")
    cond = enc.encode(1, device="cpu", dtype=torch.float32)
    assert cond.text.shape == (1, 1, SMALL.joint_dim) and cond.pooled.shape == (1, SMALL.pooled_dim)


def test_generator_from_the_model_generates_foveated_and_full_images():
    gen = build_generator(_model(), model_id="small", steps=2)
    geometry = StimulusGeometry(display=default_display(), image_width_px=128, image_height_px=128)
    fov = gen.generate(
        seed=3,
        geometry=geometry,
        gaze_px=(40.0, 40.0),
        spec=LayoutSpec(mode="acuity", strength=4.0),
        condition=0,
    )
    full = gen.generate(
        seed=3, geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"), condition=0
    )
    assert fov.image.shape == full.image.shape == (128, 128, 3)
    assert fov.tokens < full.tokens


def test_shipped_default_weights_load_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    files = DefaultWeights()
    assert files.exists and files.lora.is_file(), (
        "shipped weights missing in generator/models/weights"
    )
    total = files.base.stat().st_size + files.lora.stat().st_size
    assert total <= 25 * 1024 * 1024
    from generator import FoveatedGenerator

    gen = FoveatedGenerator.load("default", device="cpu")
    assert gen.model_id == "default-foveated"
    base = load_default_generator(variant="base")
    assert base.model_id == "default-base"
    geometry = StimulusGeometry(display=default_display(), image_width_px=256, image_height_px=256)
    out = gen.generate(
        seed=0,
        geometry=geometry,
        gaze_px=(128.0, 128.0),
        spec=LayoutSpec(mode="acuity", strength=1.0),
        condition=0,
        steps=2,
    )
    assert out.image.shape == (256, 256, 3) and out.image.std() > 1.0


def test_missing_weights_give_a_one_line_error(tmp_path):
    with pytest.raises(FoveaError, match="fovea train base"):
        load_default_generator(weights_dir=tmp_path)
