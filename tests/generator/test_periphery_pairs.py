"""fovea train pairs: pairs are written whole, resume, and never mix two models' images."""

import json

import numpy as np
import pytest

from generator.errors import FoveaError
from generator.training.periphery_pairs import PAIRS_FILE, PairSettings, build_pairs


def test_pairs_resume_and_refuse_another_models_folder(tmp_path):
    settings = PairSettings(count=1, per_twin=1, resolution=128, seed=3)
    print("seed", settings.seed)
    out = build_pairs(settings, tmp_path / "pairs", progress=False)
    record = json.loads((out / PAIRS_FILE).read_text())
    assert len(record["weights_sha256"]) == 64
    with np.load(out / "pair_000.npz") as pair:
        assert pair["twin"].shape == (128, 128, 3) and pair["foveated"].shape[0] == 1
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temporaries
    bigger = PairSettings(count=2, per_twin=1, resolution=128, seed=3)
    build_pairs(bigger, out, progress=False)  # resumes: one more pair, the first kept
    assert sorted(p.name for p in out.glob("pair_*.npz")) == ["pair_000.npz", "pair_001.npz"]
    assert record["sampler"] == "renoise"
    for changed in ({"weights_sha256": "0" * 64}, {"sampler": "euler"}):
        # as if the model had been exported again since, with other weights or another sampler
        (out / PAIRS_FILE).write_text(json.dumps({**record, **changed}))
        with pytest.raises(FoveaError, match="pairs made by other weights or another sampler"):
            build_pairs(bigger, out, progress=False)


def test_pairs_refuse_a_model_exported_again_with_other_sampler_settings(tmp_path):
    """`fovea train export --shift ...` (or --steps, --detail-steps, --detail-shift) rewrites only
    the weights' config: their hash stays, so pairs made before and after were mixed in one
    folder although the twins differ. Now the folder records the settings and refuses."""
    import dataclasses
    import shutil

    import torch

    from generator.models.weights_io import (
        BASE_FILE,
        DETAIL_FILE,
        WEIGHTS_DIR,
        load_detail,
        save_detail,
    )
    from generator.training.export import _replace_config

    weights = tmp_path / "weights"
    shutil.copytree(WEIGHTS_DIR, weights)
    settings = PairSettings(count=1, per_twin=1, resolution=128, seed=3, weights_dir=str(weights))
    print("seed", settings.seed)
    out = build_pairs(settings, tmp_path / "pairs", progress=False)
    more = dataclasses.replace(settings, count=2)
    detail = load_detail(weights / DETAIL_FILE)
    detail.config = dataclasses.replace(detail.config, steps=detail.config.steps + 1)
    save_detail(detail, weights / DETAIL_FILE, dtype=torch.float16)
    with pytest.raises(FoveaError, match="detail_steps"):
        build_pairs(more, out, progress=False)
    shutil.copyfile(WEIGHTS_DIR / DETAIL_FILE, weights / DETAIL_FILE)
    _replace_config(weights / BASE_FILE, {"shift": 0.3})
    with pytest.raises(FoveaError, match="shift"):
        build_pairs(more, out, progress=False)
    assert sorted(p.name for p in out.glob("pair_*.npz")) == ["pair_000.npz"]


def test_a_weights_folder_without_the_foveated_model_is_named_for_this_command(tmp_path, capsys):
    """fovea train pairs --weights W, W a new base exported without an adapter, said
    'post-training LoRA W/default-foveated-lora.safetensors is missing; use variant 'base''
    (and a missing folder 'use --model tiny'): options this command has not, after it had made
    the --out folder. Now it names the missing files and what the pairs need, and makes nothing."""
    import shutil
    from pathlib import Path

    from fovea_cli.main import main as fovea

    shipped = Path(__file__).resolve().parents[2] / "generator" / "models" / "weights"
    weights = tmp_path / "w"
    shutil.copytree(shipped, weights)
    (weights / "default-foveated-lora.safetensors").unlink()
    out = tmp_path / "pairs"
    argv = ["train", "pairs", "--out", str(out), "--count", "1", "--resolution", "64"]
    for folder, missing in ((weights, "default-foveated-lora"), (tmp_path / "no", "default-base")):
        assert fovea([*argv, "--weights", str(folder), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"--weights {folder} has no {missing}.safetensors" in err, err
        assert "variant" not in err and "--model" not in err
        assert not out.exists()
