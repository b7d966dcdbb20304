"""The latent autoencoder trains within its budget, and ``fovea bench latent`` writes a sensible
comparison (tiny configs, 64 px: fast)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from fovea_cli.main import main
from generator.errors import FoveaError
from generator.evaluation.latent_report import card_lines, verdict
from generator.training.autoencoder import (
    AeConfig,
    AeTrainConfig,
    encode,
    load_autoencoder,
    reconstruct,
    train_autoencoder,
)

SEED = 3
TINY_AE = AeConfig("kl", factor=8, latent_channels=4, width=8)


@pytest.fixture(scope="module")
def tiny_ae(tmp_path_factory):
    out = tmp_path_factory.mktemp("ae")
    print(f"seed {SEED}")
    # One thread: a shared CPU's other processes make two OpenMP threads much slower.
    cfg = dict(crop_px=64, batch_size=2, time_budget_s=5.0, seed=SEED, threads=1, progress=False)
    return out, train_autoencoder(AeTrainConfig(out=str(out), ae=TINY_AE, **cfg))


def test_autoencoder_trains_within_its_budget_and_reloads(tiny_ae):
    out, log = tiny_ae
    assert log["steps"] >= 1 and log["train_seconds"] < 5.0 + 10.0
    assert all(math.isfinite(x) for x in log["losses"])
    ae, config = load_autoencoder(out)
    assert config == TINY_AE and config.name == "kl-f8c4w8"
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert encode(ae, x).shape == (1, 4, 8, 8)
        assert reconstruct(ae, x).shape == x.shape
        taesd = AeConfig.from_name("tiny-f16c16w8").build().eval()
        assert encode(taesd, x).shape == (1, 16, 4, 4) and reconstruct(taesd, x).shape == x.shape
    with pytest.raises(FoveaError, match="not like"):
        AeConfig.from_name("f8c4w32")


def test_continuing_an_autoencoder_from_its_weights_file(tiny_ae, tmp_path, capsys):
    """``--init`` names a run folder or its weights file alike (the steps add up); another
    architecture's weights give one error line, not a traceback."""
    from generator.training.autoencoder import WEIGHTS_FILE
    from generator.training.autoencoder import main as train_main

    out, first = tiny_ae
    cfg = dict(crop_px=64, batch_size=2, time_budget_s=2.0, seed=SEED, threads=1, progress=False)
    again = AeTrainConfig(
        out=str(tmp_path / "more"), ae=TINY_AE, init=str(out / WEIGHTS_FILE), **cfg
    )
    log = train_autoencoder(again)
    assert log["steps_total"] == first["steps_total"] + log["steps"]
    argv = ["--kind", "kl", "--factor", "8", "--latent-channels", "4", "--width", "16"]
    argv += ["--init", str(out), "--out", str(tmp_path / "other"), "--no-progress"]
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --init") and "kl-f8c4w8" in err and "Traceback" not in err


@pytest.mark.parametrize("pixel_model", ["tiny", "default"])
def test_bench_latent_cli_writes_finite_fields_and_a_card_section(tiny_ae, tmp_path, pixel_model):
    """A class-conditioned preset and the scene-conditioned default model (the command's
    default; its latent counterpart keeps the scene conditioning)."""
    out, _ = tiny_ae
    path = tmp_path / "latent.json"
    argv = ["bench", "latent", "--json", str(path), "--ae", str(out), "--pixel-model", pixel_model]
    argv += ["--resolution", "64", "--strengths", "1", "--repeats", "1", "--recon-crops", "64"]
    argv += ["--reference-aes", "tiny-f8c4w8", "--no-jod"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see tiny_ae
    try:
        assert main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    result = json.loads(path.read_text())
    json.dumps(result, allow_nan=False)  # strict JSON: no NaN / Infinity
    (size,) = result["sizes"]
    assert size["resolution_px"] == 64 and size["budget_s"] is None
    (fov,) = size["foveated"]
    for key in ("pixel_s", "latent_s", "pixel_denoise_s", "latent_cpu_s"):
        assert 0 < fov[key] < 60
    assert 0 < fov["tokens"] <= fov["tokens_full"] == 16
    assert 0 < fov["latent_step_gflops"] < fov["pixel_step_gflops"]
    assert size["pixel_decode_s"] >= 0 and size["latent_decode_s"] > 0
    assert size["latent_decoder"]["decode_gflops"] > 0
    assert size["latent_step_gflops_full"] > 0 and size["pixel_step_gflops_full"] > 0
    assert size["reference_decoders"]["tiny-f8c4w8"]["decoder_params"] > 0
    (rec,) = result["reconstruction"]
    assert rec["images"] >= 1 and 0 < rec["psnr_db_median"] < 60 and -1 < rec["ssim_median"] <= 1
    assert rec["jod"] is None and 0 < rec["resample_baseline_psnr_db_median"] < 60
    assert result["pixel_bound"]["lossless"] is True
    assert result["autoencoder"]["trained"] is True and result["autoencoder"]["steps"] >= 1
    assert result["params"]["latent_transformer"] < result["params"]["pixel_transformer"]
    assert result["verdict"]["choice"] in ("pixel", "latent")
    assert (
        result["command"].startswith("fovea bench latent --json")
        and "--no-jod" in result["command"]
    )
    assert "load_avg_1_5_15" in result["machine"]
    assert result["machine"]["torch_threads"] == 1
    lines = card_lines(path)
    assert lines[1] == "## Pixel vs latent space (measured)" and "Verdict" in lines[-1]
    assert card_lines(tmp_path / "missing.json") == []


def _speed(decode_s: float, pixel_s: float, latent_s: float) -> dict:
    row = {"resolution_px": 1024, "budget_s": 2.0, "latent_decode_s": decode_s}
    row["latent_decoder"] = {"decode_gflops": 40.0}
    row["foveated"] = [
        {"strength": 0.5, "pixel_s": pixel_s, "latent_s": latent_s, "latent_step_gflops": 2.0}
    ]
    return {"sizes": [row]}


def test_verdict_follows_the_numbers():
    recon = [{"crop_px": 512, "psnr_db_median": 30.0, "ssim_median": 0.9, "jod_median": 9.0}]
    recon[0]["resample_baseline_psnr_db_median"] = 25.0
    slow = verdict(_speed(decode_s=3.0, pixel_s=1.8, latent_s=4.8), recon, 0.5, steps=10)
    assert slow["choice"] == "pixel" and slow["decode_exceeds_budget_fraction"]["1024"]
    assert slow["decode_fraction_of_budget"]["1024"] == pytest.approx(1.5)
    assert slow["latent_decode_over_pixel_foveated"]["1024"] == pytest.approx(3.0 / 1.8)
    assert slow["decoder_over_foveated_sampling_flops"]["1024"] == pytest.approx(2.0)
    assert slow["within_budget"]["latent"]["1024px_s0.5"] is False
    fast = verdict(_speed(decode_s=0.2, pixel_s=1.8, latent_s=1.5), recon, 0.5, steps=10)
    assert fast["choice"] == "latent" and not fast["latent_slower_everywhere"]
    assert fast["ae_beats_resampling"] and "training-limited" not in fast["reason"]


def test_an_autoencoder_worse_than_resampling_keeps_pixel_space():
    """Latent was chosen on speed alone: seen with --ae none (an untrained autoencoder, PSNR
    9.7 dB against plain resampling's 22.2 dB) at 64 px, where one noisy timing of the latent
    model came out faster; the reason said 'training-limited' beside the choice 'latent'."""
    recon = [{"crop_px": 512, "psnr_db_median": 9.7, "ssim_median": 0.08, "jod_median": None}]
    recon[0]["resample_baseline_psnr_db_median"] = 22.2
    fast = verdict(_speed(decode_s=0.2, pixel_s=1.8, latent_s=1.5), recon, 0.5, steps=10)
    assert not fast["latent_slower_everywhere"] and fast["ae_beats_resampling"] is False
    assert fast["choice"] == "pixel" and "training-limited" in fast["reason"]


def test_a_data_folder_without_a_manifest_is_refused_before_the_timings(tmp_path, capsys):
    """--data naming a folder with no image manifest failed only after the whole timing part
    (minutes at 1024 px): the error now comes first, the same one line."""
    args = ["bench", "latent", "--ae", "none", "--data", str(tmp_path), "--no-jod"]
    args += ["--resolution", "64", "--recon-crops", "64", "--strengths", "1", "--repeats", "1"]
    assert main([*args, "--reference-aes", "--json", str(tmp_path / "l.json")]) == 2
    printed = capsys.readouterr()
    assert printed.err.strip() == (
        f"error: no image manifest at {tmp_path / 'manifest.json'}; run `fovea data images "
        f"--cache {tmp_path}`"
    )
    assert "decode:" not in printed.out and not (tmp_path / "l.json").exists()
