"""Image-to-image for prompt models: a scene, encoded and noised to t_start, sampled to 0 on the
foveated layout. A real FLUX.1 pipeline directory (tiny random configs, saved with diffusers'
``save_pretrained`` and loaded by path) and the tiny pixel-space presets."""

import numpy as np
import pytest
import torch

from generator import FoveaError, LayoutSpec, StimulusGeometry, default_display, load_generator
from generator.codecs import PixelCodec, VaeCodec, to_uint8_image
from generator.sampler import shifted_timesteps
from generator.scene import Scene, downsample_to_scene, scene_tensor, upsample_scene
from generator.tokens import pack, unpack

GEOMETRY = StimulusGeometry(display=default_display(), image_width_px=256, image_height_px=256)
FOVEATED = dict(gaze_px=(96.0, 128.0), spec=LayoutSpec(strength=1.0))
WORDS = ["a", "photo", "of", "cat", "dog", "tree", "house", "sky"]


def _tiny_flux_pipeline(path):
    """Save a FLUX.1 ``FluxPipeline`` with tiny random transformer, VAE, CLIP and T5 to ``path``."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxPipeline,
        FluxTransformer2DModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTokenizer,
        T5Config,
        T5EncoderModel,
        T5TokenizerFast,
    )

    torch.manual_seed(0)
    clip_vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for piece in [w + "</w>" for w in WORDS] + [
        c + e for c in "abcdefghijklmnopqrstuvwxyz" for e in ("", "</w>")
    ]:
        clip_vocab.setdefault(piece, len(clip_vocab))
    t5_vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [("▁" + w, -1.0) for w in WORDS]
    clip = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(clip_vocab),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=1,
            num_attention_heads=2,
            projection_dim=32,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=len(t5_vocab),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=1,
            num_heads=2,
            relative_attention_num_buckets=8,
            decoder_start_token_id=0,
            pad_token_id=0,
            eos_token_id=1,
        )
    )
    vae = AutoencoderKL(  # 4 blocks: 8 px per latent cell, as FLUX.1's VAE
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 8, 8),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,  # 4 latent channels x 2 x 2 cells per token
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=(4, 6, 6),
    )
    FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=clip,
        tokenizer=CLIPTokenizer(vocab=clip_vocab, merges=[], model_max_length=77),
        text_encoder_2=t5,
        tokenizer_2=T5TokenizerFast(vocab=t5_vocab, extra_ids=0, model_max_length=512),
        transformer=transformer,
    ).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def flux1(tmp_path_factory):
    path = _tiny_flux_pipeline(tmp_path_factory.mktemp("flux1"))
    generator = load_generator(str(path))
    generator.encoder.text_len = 16  # T5 tokens; 512 would only slow the tiny model down
    return generator


@pytest.fixture(scope="module")
def scene():
    """A photograph's 64 px scene (scikit-image's astronaut, 4x smaller than the 256 px output)."""
    from skimage.data import astronaut

    photo = torch.from_numpy(astronaut()).permute(2, 0, 1)[None].float() / 127.5 - 1
    small = downsample_to_scene(torch.nn.functional.avg_pool2d(photo, 2), 4)
    pixels = ((small[0].permute(1, 2, 0) + 1) * 127.5).round().to(torch.uint8).numpy()
    return Scene(pixels=pixels, source="skimage:astronaut")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def _round_trip(codec, scene, layout=None) -> np.ndarray:
    """The upsampled scene through the codec and back (reduced to ``layout``'s tokens when
    given): what a start at t = 0 would give."""
    grid = codec.encode(upsample_scene(scene_tensor(scene), height=256, width=256))
    if layout is not None:
        grid = unpack(pack(grid, layout, p=codec.cells_per_token), layout, p=codec.cells_per_token)
    return to_uint8_image(codec.decode(grid))


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_schedule_runs_from_t_start_to_zero_in_the_same_steps(shift):
    plain = shifted_timesteps(6, shift=shift)
    assert torch.equal(shifted_timesteps(6, shift=shift, t_start=1.0), plain)
    late = shifted_timesteps(6, shift=shift, t_start=0.4)
    assert late.shape == plain.shape
    assert late[0].item() == pytest.approx(0.4) and late[-1].item() == 0.0
    assert bool((late[1:] < late[:-1]).all())
    with pytest.raises(ValueError, match="t_start"):
        shifted_timesteps(6, t_start=0.0)


def test_vae_encode_is_decode_inverse_normalisation(flux1, scene):
    codec = flux1.codec
    assert isinstance(codec, VaeCodec)
    image = upsample_scene(scene_tensor(scene), height=256, width=256)
    grid = codec.encode(image)
    assert grid.shape == (1, 4, 32, 32) and grid.dtype == torch.float32
    vae = codec.vae
    with torch.no_grad():
        direct = vae.decode(vae.encode(image).latent_dist.mode()).sample
    torch.testing.assert_close(codec.decode(grid), direct, rtol=1e-4, atol=1e-5)
    assert torch.equal(codec.encode(image), grid)  # the posterior mean: deterministic
    assert torch.equal(PixelCodec(cells_per_token=16).encode(image), image)


def test_flux1_t_start_one_is_plain_generation_on_the_foveated_layout(flux1, scene):
    kwargs = dict(seed=4, geometry=GEOMETRY, condition="a photo of a cat", **FOVEATED)
    plain = flux1.generate(**kwargs)
    from_scene = flux1.generate(**kwargs, scene=scene, t_start=1.0)
    assert from_scene.tokens < from_scene.tokens_full
    assert np.array_equal(from_scene.image, plain.image)
    assert from_scene.sidecar["scene"] == scene.record() and from_scene.sidecar["t_start"] == 1.0
    assert plain.sidecar["scene"] is None and plain.scene is None


@pytest.mark.parametrize("foveated", [False, True])
def test_flux1_small_t_start_keeps_the_scene(flux1, scene, foveated):
    """Full layout: close to the scene's VAE round trip. Foveated: close to that round trip with
    the latent reduced to the layout's tokens (a random VAE does not decode averaged latents to
    a blur, so the full round trip is not what t = 0 on a foveated layout gives)."""
    view = FOVEATED if foveated else dict(gaze_px=None, spec=LayoutSpec(mode="full"))
    kwargs = dict(seed=4, geometry=GEOMETRY, scene=scene, **view)
    near = flux1.generate(**kwargs, t_start=0.02)
    far = flux1.generate(**kwargs, t_start=1.0)
    assert (near.tokens < near.tokens_full) == foveated and near.image.shape == (256, 256, 3)
    reference = _round_trip(flux1.codec, scene, near.layout if foveated else None)
    assert near.scene is scene
    side = near.sidecar
    assert side["t_start"] == 0.02 and side["scene"]["sha256"] == scene.sha256
    assert side["scene"]["size_px"] == [64, 64] and len(side["step_seconds"]) == flux1.steps
    near_db, far_db = _psnr(near.image, reference), _psnr(far.image, reference)
    assert near_db >= 30.0 and near_db >= far_db + 10.0, (near_db, far_db)
    default = flux1.generate(**kwargs)  # the default start lies between the two
    assert default.sidecar["t_start"] == 0.6
    assert near_db > _psnr(default.image, reference) > far_db


@pytest.mark.parametrize("name", ["tiny", "flux2-tiny"])
def test_pixel_presets_take_scenes_through_the_same_path(name, scene):
    generator = load_generator(name)
    reference = _round_trip(generator.codec, scene)  # pixel space: the upsampled scene itself
    kwargs = dict(seed=2, geometry=GEOMETRY, scene=scene, **FOVEATED)
    near = generator.generate(**kwargs, t_start=0.02)
    plain = generator.generate(seed=2, geometry=GEOMETRY, **FOVEATED)
    assert near.tokens < near.tokens_full
    assert np.array_equal(generator.generate(**kwargs, t_start=1.0).image, plain.image)
    assert _psnr(near.image, reference) >= _psnr(plain.image, reference) + 10.0


@pytest.mark.parametrize("t_start", [0.0, -0.1, 1.5])
def test_t_start_outside_zero_one_is_a_clear_error(t_start, scene):
    generator = load_generator("tiny")
    with pytest.raises(FoveaError, match=r"t_start must be in \(0, 1\]"):
        generator.generate(seed=0, geometry=GEOMETRY, scene=scene, t_start=t_start, **FOVEATED)


def test_a_flux1_directory_loads_in_bfloat16_without_a_deprecation_warning(flux1):
    """``fovea generate --model DIR --dtype bfloat16`` on a FLUX.1 directory printed diffusers'
    "FutureWarning: `torch_dtype` is deprecated ... use `dtype`" on every load."""
    import warnings

    path = flux1.model_id
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        generator = load_generator(path, dtype="bfloat16")
    assert not [w for w in caught if "torch_dtype" in str(w.message)]
    assert generator.denoiser.transformer.dtype == torch.bfloat16
    assert generator.codec.vae.dtype == torch.bfloat16


def test_loading_a_flux1_directory_does_not_ask_for_torchvision(flux1):
    """Every FLUX.1 load (``fovea generate --model DIR``, a session's warm-up) printed two
    transformers warnings that CLIPImageProcessor and SiglipImageProcessor 'require torchvision
    (not installed)' and to install it: parts of FLUX.1's IP-adapter, which the kit never loads.
    A fresh process, as the warning is printed once per process."""
    import subprocess
    import sys

    code = f"from generator.loading import load_generator; load_generator({flux1.model_id!r})"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "torchvision" not in run.stderr
