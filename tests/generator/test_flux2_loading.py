"""FLUX.2 [klein] pipeline directories: load, normalise latents as the pipeline does, generate on
circle and acuity layouts, cache prompts, merge a LoRA in the release's key format."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
import torch

from generator.geometry import StimulusGeometry, default_display
from generator.layout import LayoutSpec
from generator.loading import load_generator
from generator.tiny_flux2 import save_tiny_flux2_pipeline

# The tiny VAE downsamples 2x: 4 px per token, so 64 px = 16 x 16 tokens.
GEOMETRY = StimulusGeometry(display=default_display(), image_width_px=64, image_height_px=64)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return save_tiny_flux2_pipeline(tmp_path_factory.mktemp("klein") / "tiny-klein")


@pytest.fixture(scope="module")
def generator(tiny_dir):
    return load_generator(str(tiny_dir))


def test_directory_loads_as_flux2(generator):
    from generator.flux2 import Flux2PromptEncoder, Flux2VaeCodec

    assert isinstance(generator.codec, Flux2VaeCodec)
    assert isinstance(generator.encoder, Flux2PromptEncoder)
    assert generator.denoiser.axes == 4
    assert generator.steps == 4 and generator.guidance_scale == 1.0  # distilled
    assert generator.token_px == 4
    assert generator.shift > 1.0  # dynamic shifting: exp(mu)


def test_codec_matches_the_pipelines_batch_norm(generator):
    """The kit's grid, patchified 2x2 and packed, is the pipeline's normalised packed latents."""
    from diffusers import Flux2KleinPipeline

    from generator.tokens import patchify

    codec = generator.codec
    raw = torch.randn(1, codec.channels, 8, 8, generator=torch.Generator().manual_seed(0))
    ours = patchify(codec.normalise(raw), 2)
    patched = Flux2KleinPipeline._patchify_latents(raw)
    bn = codec.vae.bn
    mean = bn.running_mean.view(1, -1, 1, 1)
    std = torch.sqrt(bn.running_var.view(1, -1, 1, 1) + codec.vae.config.batch_norm_eps)
    theirs = Flux2KleinPipeline._pack_latents((patched - mean) / std)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(codec.denormalise(codec.normalise(raw)), raw)


@pytest.mark.parametrize(
    "spec",
    [LayoutSpec(mode="circle", periphery_factor=2), LayoutSpec(mode="acuity", strength=4.0)],
    ids=["circle", "acuity"],
)
def test_generates_on_foveated_layouts(generator, spec):
    out = generator.generate(
        seed=1, geometry=GEOMETRY, gaze_px=(20.0, 30.0), spec=spec, condition="a cat"
    )
    assert out.image.shape == (64, 64, 3) and out.image.dtype == np.uint8
    assert out.tokens < out.tokens_full
    assert len(out.step_seconds) == 4


def test_prompts_are_encoded_once(generator, monkeypatch):
    encoder = generator.encoder
    calls = []
    original = encoder.pipe.encode_prompt
    monkeypatch.setattr(
        encoder.pipe, "encode_prompt", lambda **kw: calls.append(kw) or original(**kw)
    )
    first = encoder.encode("a red fox", device="cpu", dtype=torch.float32)
    second = encoder.encode("a red fox", device="cpu", dtype=torch.float32)
    assert len(calls) == 1
    torch.testing.assert_close(first.text, second.text)
    assert first.text.shape == (1, 512, generator.denoiser.transformer.config.joint_attention_dim)


def test_schedule_shift_follows_the_pipeline():
    from diffusers.pipelines.flux2.pipeline_flux2_klein import compute_empirical_mu

    from generator.flux2 import empirical_mu, schedule_shift

    for tokens, steps in ((4096, 4), (4096, 50), (1024, 4), (6000, 4)):
        assert empirical_mu(tokens, steps) == pytest.approx(compute_empirical_mu(tokens, steps))
    assert schedule_shift({"shift": 3.0}, steps=4) == 3.0


def _release_lora(transformer, *, rank=4, seed=0) -> dict[str, torch.Tensor]:
    """A synthetic LoRA in the release's DiffSynth key format (``.lora_A.default.weight``)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, module in transformer.named_modules():
        if name.endswith(("attn.to_q", "attn.to_qkv_mlp_proj", "ff.linear_in")):
            out[f"{name}.lora_A.default.weight"] = torch.randn(
                rank, module.in_features, generator=g
            )
            out[f"{name}.lora_B.default.weight"] = torch.randn(
                module.out_features, rank, generator=g
            )
    return out


def test_release_lora_merges_as_b_times_a(tiny_dir, tmp_path):
    from safetensors.torch import save_file

    from generator.release_lora import to_peft_state_dict

    base = load_generator(str(tiny_dir))
    transformer = base.denoiser.transformer
    lora = _release_lora(transformer)
    path = tmp_path / "fov_random.safetensors"
    save_file(lora, str(path))
    merged = load_generator(str(tiny_dir), lora=path, lora_scale=0.5)
    name = "transformer_blocks.0.attn.to_q"
    before = dict(transformer.named_modules())[name].weight
    after = dict(merged.denoiser.transformer.named_modules())[name].weight
    delta = lora[f"{name}.lora_B.default.weight"] @ lora[f"{name}.lora_A.default.weight"]
    torch.testing.assert_close(after, before + 0.5 * delta)
    assert "LoRA fov_random.safetensors" in merged.model_id
    peft = to_peft_state_dict(lora)
    assert f"{name}.lora_A.weight" in peft and len(peft) == len(lora)


def test_release_lora_for_another_model_is_refused(generator):
    from generator.errors import FoveaError
    from generator.release_lora import merge_lora

    bad = {
        "transformer_blocks.0.attn.to_q.lora_A.weight": torch.zeros(4, 7),
        "transformer_blocks.0.attn.to_q.lora_B.weight": torch.zeros(7, 4),
    }
    with pytest.raises(FoveaError, match="another model size"):
        merge_lora(generator.denoiser.transformer, bad)
    with pytest.raises(FoveaError, match="no Linear"):
        merge_lora(
            generator.denoiser.transformer,
            {"nope.lora_A.weight": torch.zeros(1, 1), "nope.lora_B.weight": torch.zeros(1, 1)},
        )
    # a FLUX.1 LoRA (its single blocks have to_q; FLUX.2's fuse it into to_qkv_mlp_proj)
    flux1 = {
        "single_transformer_blocks.0.attn.to_q.lora_A.weight": torch.zeros(4, 7),
        "single_transformer_blocks.0.attn.to_q.lora_B.weight": torch.zeros(7, 4),
    }
    with pytest.raises(
        FoveaError, match=r"this Flux2Transformer2DModel does not have .*: a LoRA for another model"
    ):
        merge_lora(generator.denoiser.transformer, flux1)


def test_release_lora_generates_with_release_token_rules(tiny_dir, tmp_path, generator):
    from safetensors.torch import save_file

    from generator.release_generator import ReleaseFoveatedGenerator
    from generator.release_layout import release_circle_layout

    path = tmp_path / "fov_random.safetensors"
    save_file(_release_lora(generator.denoiser.transformer, seed=1), str(path))
    released = load_generator(str(tiny_dir), lora=path)
    assert isinstance(released, ReleaseFoveatedGenerator)
    assert released.denoiser.position_ids == "release" and released.denoiser.crpa is not None
    spec = LayoutSpec(mode="circle", periphery_factor=2)
    out = released.generate(seed=2, geometry=GEOMETRY, gaze_px=(20.0, 30.0), spec=spec)
    expected = release_circle_layout(geometry=GEOMETRY, gaze_px=(20.0, 30.0), spec=spec, patch_px=4)
    np.testing.assert_array_equal(out.layout.rows, expected.rows)
    np.testing.assert_array_equal(out.layout.levels, expected.levels)
    acuity = released.generate(
        seed=2, geometry=GEOMETRY, gaze_px=(20.0, 30.0), spec=LayoutSpec(strength=4.0)
    )
    assert acuity.image.shape == (64, 64, 3)
    kit = load_generator(str(tiny_dir), lora=path, token_rules="kit")
    assert kit.denoiser.position_ids == "kit"


def test_fovea_generate_takes_a_flux2_directory_and_a_lora(tiny_dir, tmp_path, generator):
    import json
    import subprocess
    import sys

    from safetensors.torch import save_file

    lora = tmp_path / "fov_bbox.safetensors"
    save_file(_release_lora(generator.denoiser.transformer, seed=2), str(lora))
    out = tmp_path / "klein.png"
    args = ["generate", "--model", str(tiny_dir), "--lora", str(lora), "--size", "64"]
    args += ["--gaze", "20,30", "--mode", "circle", "--prompt", "a fox", "--out", str(out)]
    r = subprocess.run(
        [sys.executable, "-m", "fovea_cli", *args], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    side = json.loads(out.with_suffix(".json").read_text())
    assert "fov_bbox.safetensors" in side["model"] and "release token rules" in side["model"]
    assert side["tokens"] < side["tokens_full"]


def test_codec_encodes_images_for_image_to_image(generator):
    codec = generator.codec
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5)) * 2 - 1
    grid = codec.encode(images)
    assert grid.shape == (1, codec.channels, 16, 16) and grid.dtype == torch.float32
    assert codec.decode(grid).shape == (1, 3, 32, 32)


def test_static_shapes_and_foveated_decode_through_the_pipeline(tiny_dir):
    """A FLUX.2 directory sampled at static, bucketed shapes gives the eager sampler's image, and
    ``decode='foveated'`` keeps the fovea and records itself; the twin always decodes in full."""
    from generator.errors import FoveaError

    spec = LayoutSpec(mode="acuity", strength=4.0)
    run = dict(seed=3, geometry=GEOMETRY, gaze_px=(20.0, 30.0), spec=spec, condition="a cat")
    eager = load_generator(str(tiny_dir), static_shapes=False)
    static = load_generator(str(tiny_dir), static_shapes=True)
    a, b = eager.generate(**run), static.generate(**run)
    assert a.sidecar["sampler"] == "eager" and b.sidecar["sampler"] == "static"
    assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 1
    static.decode = "foveated"
    c = static.generate(**run)
    assert c.sidecar["decode"] == "foveated" and b.sidecar["decode"] == "full"
    fine = np.kron(c.layout.level_map() == 1, np.ones((4, 4), bool))
    assert np.abs(c.image.astype(int) - b.image.astype(int))[fine].mean() < 8
    twin = static.generate(**{**run, "gaze_px": None, "spec": LayoutSpec(mode="full")})
    assert twin.sidecar["decode"] == "full"
    with pytest.raises(FoveaError, match="decode must be"):
        static.decode = "half"
    with pytest.raises(FoveaError, match="pixels"):
        load_generator("tiny", decode="foveated")


def test_a_weights_file_cut_short_is_one_error_naming_it(tiny_dir, tmp_path):
    """A pipeline directory copied only in part (its text encoder's weights cut short) stopped
    in a safetensors traceback naming no file; now one FoveaError names it."""
    import shutil

    from generator.errors import FoveaError

    copy = tmp_path / "half-copied"
    shutil.copytree(tiny_dir, copy)
    weights = copy / "text_encoder" / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    with pytest.raises(FoveaError, match=r"text_encoder/model\.safetensors is not a readable"):
        load_generator(str(copy))


@pytest.mark.parametrize("component", ["text_encoder", "tokenizer"])
def test_a_component_folder_left_out_is_one_error_naming_it(tiny_dir, tmp_path, component):
    """A copy without the text encoder was refused with diffusers' 'no file named
    model.safetensors ... found in directory <DIR>' (the folder not named); one without the
    tokenizer loaded and stopped at the first prompt in a chat-template traceback."""
    import shutil

    from generator.errors import FoveaError

    copy = tmp_path / "partial"
    shutil.copytree(tiny_dir, copy)
    shutil.rmtree(copy / component)
    with pytest.raises(FoveaError, match=rf"lacks {component}/ \(listed in its model_index"):
        load_generator(str(copy))
    # fovea check, which never loads the model, refuses the protocol naming it the same way
    from protocol import validate_protocol
    from protocol.load import PROTOCOL_DIR

    data = tomllib.loads((PROTOCOL_DIR / "pilot_2afc.toml").read_text(encoding="utf-8"))
    data["stimulus"]["model"] = str(copy)
    with pytest.raises(FoveaError, match=rf"lacks {component}/ \(listed in its model_index"):
        validate_protocol(data, source="test")


def test_a_tokenizer_without_its_vocabulary_is_one_error_naming_it(tiny_dir, tmp_path, capsys):
    """A copy whose tokenizer/ kept tokenizer_config.json but not tokenizer.json loaded as an
    empty tokenizer (3 tokens) that encodes every prompt as no tokens: fovea generate wrote an
    unprompted image and said nothing. Refused, by the loader and by fovea check alike."""
    import shutil

    from fovea_cli.main import main
    from generator.errors import FoveaError

    copy = tmp_path / "partial"
    shutil.copytree(tiny_dir, copy)
    (copy / "tokenizer" / "tokenizer.json").unlink()
    out = tmp_path / "o.png"
    argv = ["generate", "--model", str(copy), "--size", "64", "--gaze", "32,32"]
    assert main([*argv, "--prompt", "a cat", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: model directory {copy}: tokenizer/ has no vocabulary file (tokenizer.json, "
        "vocab.json, vocab.txt, spiece.model, tokenizer.model, sentencepiece.bpe.model): copy "
        "the whole directory that save_pretrained wrote"
    ), err
    assert not out.exists()
    from protocol import validate_protocol
    from protocol.load import PROTOCOL_DIR

    data = tomllib.loads((PROTOCOL_DIR / "pilot_2afc.toml").read_text(encoding="utf-8"))
    data["stimulus"]["model"] = str(copy)
    with pytest.raises(FoveaError, match=r"tokenizer/ has no vocabulary file"):
        validate_protocol(data, source="test")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("fov.pt", b"not a pickle", "is not a readable torch file"),
        ("fov.safetensors", b"cut", "is not a readable safetensors file"),
        ("fov.safetensors", None, "'foo.weight' is neither lora_A/lora_B nor alpha"),
    ],
)
def test_a_bad_lora_file_is_refused_before_the_model_loads(tmp_path, name, content, message):
    """A LoRA file that cannot serve was read only after the model had loaded (minutes for a 4B
    model), and a torch file that is no pickle ended in a traceback; the model named here does
    not exist, so only a LoRA checked first gives the LoRA's error."""
    from safetensors.torch import save_file

    from generator.errors import FoveaError

    path = tmp_path / name
    if content is None:
        save_file({"foo.weight": torch.zeros(2, 2)}, str(path))
    else:
        path.write_bytes(content)
    with pytest.raises(FoveaError, match=message):
        load_generator(str(tmp_path / "no-such-model"), lora=path)


def test_a_lora_whose_a_and_b_ranks_differ_is_one_error(tiny_dir, tmp_path, generator):
    """lora_A of rank 2 with lora_B of rank 4 (a file assembled from two checkpoints) stopped in
    torch's 'mat1 and mat2 shapes cannot be multiplied' traceback during the merge."""
    from safetensors.torch import save_file

    from generator.errors import FoveaError

    lora = _release_lora(generator.denoiser.transformer, rank=4)
    key = "transformer_blocks.0.attn.to_q.lora_A.default.weight"
    lora[key] = lora[key][:2]
    path = tmp_path / "mixed.safetensors"
    save_file(lora, str(path))
    with pytest.raises(FoveaError, match=r"to_q': lora_A is \(2, \d+\) and lora_B \(\d+, 4\)"):
        load_generator(str(tiny_dir), lora=path)


def test_a_refused_lora_leaves_the_transformer_as_it_was(generator):
    """The first module fits, the second is for another model size: nothing is merged."""
    from generator.errors import FoveaError
    from generator.release_lora import merge_lora

    layer = dict(generator.denoiser.transformer.named_modules())["transformer_blocks.0.attn.to_q"]
    before = layer.weight.detach().clone()
    lora = {
        "transformer_blocks.0.attn.to_q.lora_A.weight": torch.ones(2, layer.in_features),
        "transformer_blocks.0.attn.to_q.lora_B.weight": torch.ones(layer.out_features, 2),
        "transformer_blocks.0.attn.to_k.lora_A.weight": torch.zeros(2, 7),
        "transformer_blocks.0.attn.to_k.lora_B.weight": torch.zeros(7, 2),
    }
    with pytest.raises(FoveaError, match="another model size"):
        merge_lora(generator.denoiser.transformer, lora)
    assert torch.equal(layer.weight, before)


def test_a_flux2_dev_directory_loads_as_its_own_pipeline(tiny_dir, tmp_path):
    """A ``Flux2Pipeline`` ([dev]) directory was loaded as [klein]'s pipeline, whose prompt
    encoding (chat template, hidden layers 9, 18, 27) is not [dev]'s (layers 10, 20, 30): the
    prompt's conditioning was wrong without a word. The class the directory names loads it, and
    a full-size text encoder is read at that pipeline's layers."""
    import json
    import shutil

    from diffusers import Flux2KleinPipeline, Flux2Pipeline
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from generator.flux2 import Flux2PromptEncoder
    from generator.tiny_flux2 import TINY_TEXT_HIDDEN, tiny_flux2_components

    dev = tmp_path / "tiny-dev"
    shutil.copytree(tiny_dir, dev)
    index = json.loads((dev / "model_index.json").read_text())
    index["_class_name"] = "Flux2Pipeline"
    del index["is_distilled"]
    (dev / "model_index.json").write_text(json.dumps(index))
    assert isinstance(load_generator(str(dev)).encoder.pipe, Flux2Pipeline)

    parts = tiny_flux2_components()
    parts["text_encoder"] = Qwen3ForCausalLM(  # as deep as the real encoders, tiny otherwise
        Qwen3Config(
            vocab_size=64,
            hidden_size=TINY_TEXT_HIDDEN,
            intermediate_size=16,
            num_hidden_layers=30,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=8,
        )
    )
    klein = Flux2KleinPipeline(**parts)
    del parts["is_distilled"]
    assert Flux2PromptEncoder(klein).layers() == (9, 18, 27)
    assert Flux2PromptEncoder(Flux2Pipeline(**parts)).layers() == (10, 20, 30)


@pytest.mark.parametrize("component", ["transformer", "vae", "text_encoder"])
def test_a_component_without_its_weights_is_one_error_naming_it(tiny_dir, tmp_path, component):
    """A copy that stopped before a component's weights file (the largest) was refused with
    diffusers' 'Error no file named diffusion_pytorch_model.bin found in directory <DIR>/vae'
    (a file such a directory never has), after a 'Defaulting to unsafe serialization' line."""
    import shutil

    from generator.errors import FoveaError

    copy = tmp_path / "partial"
    shutil.copytree(tiny_dir, copy)
    for weights in (copy / component).glob("*.safetensors"):
        weights.unlink()
    message = rf"{component}/ has a config.json but no weights file \(\*\.safetensors\)"
    with pytest.raises(FoveaError, match=message):
        load_generator(str(copy))
    from protocol import validate_protocol
    from protocol.load import PROTOCOL_DIR

    data = tomllib.loads((PROTOCOL_DIR / "pilot_2afc.toml").read_text(encoding="utf-8"))
    data["stimulus"]["model"] = str(copy)
    with pytest.raises(FoveaError, match=message):
        validate_protocol(data, source="test")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[]", r"model_index.json holds a JSON list, not the object"),
        (b"\xff\xfe{", r"model_index.json is not valid JSON: 'utf-8' codec can't decode"),
    ],
)
def test_a_model_index_that_is_no_json_object_is_one_error(tmp_path, content, message):
    """A model_index.json holding a JSON list ended in "AttributeError: 'list' object has no
    attribute 'items'", one that is not UTF-8 text (a damaged copy) in a UnicodeDecodeError: both
    tracebacks."""
    from generator.errors import FoveaError

    (tmp_path / "model_index.json").write_bytes(content)
    with pytest.raises(FoveaError, match=message):
        load_generator(str(tmp_path))


def test_float16_on_the_cpu_runs_without_diffusers_saying_it_will_fail(
    tiny_dir, tmp_path, capfd, caplog
):
    """`--dtype float16` on a CPU printed diffusers' 'Pipelines loaded with `dtype=torch.float16`
    cannot run with `cpu` device ... running them will fail' and then generated the image: the
    kit moves the pipeline with that warning silenced (the image is the check)."""
    from PIL import Image

    from fovea_cli.main import main

    out = tmp_path / "half.png"
    argv = ["generate", "--model", str(tiny_dir), "--size", "64", "--gaze", "32,32", "--steps", "1"]
    assert main([*argv, "--prompt", "a cat", "--dtype", "float16", "--out", str(out)]) == 0
    captured = capfd.readouterr()  # diffusers' handler writes to the stderr of its first use,
    said = captured.err + captured.out + caplog.text  # and its records reach pytest's log too
    assert "cannot run with `cpu` device" not in said
    image = np.asarray(Image.open(out))
    assert image.shape == (64, 64, 3) and image.std() > 1.0


def test_the_generate_sidecar_records_the_dtype(tiny_dir, tmp_path):
    """`fovea generate --dtype bfloat16` wrote a sidecar with the device and sampler but not the
    dtype, whose images differ from float32's: it is recorded now."""
    import json

    from fovea_cli.main import main

    argv = ["generate", "--model", str(tiny_dir), "--size", "64", "--gaze", "32,32", "--steps", "1"]
    for dtype in ("bfloat16", "float32"):
        out = tmp_path / f"{dtype}.png"
        assert main([*argv, "--prompt", "a cat", "--dtype", dtype, "--out", str(out)]) == 0
        assert json.loads(out.with_suffix(".json").read_text())["dtype"] == dtype
