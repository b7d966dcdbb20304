"""``fovea bench lora``: a release-format LoRA on acuity and circle layouts against the base model,
run end to end on a tiny random FLUX.2 directory (the numbers mean nothing; every stage runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fovea_cli.main import main
from generator.tiny_flux2 import save_tiny_flux2_pipeline
from tests.generator.forward_hooks import module_forwards

SEED = 0


def _release_lora(model_dir: Path, path: Path) -> Path:
    """A LoRA in the release's key format (``<module>.lora_A.default.weight``), seeded."""
    from safetensors.torch import save_file

    from generator.loading import load_generator

    transformer = load_generator(str(model_dir)).denoiser.transformer
    g = torch.Generator().manual_seed(SEED)
    tensors = {}
    for name, module in transformer.named_modules():
        if name.endswith(("attn.to_q", "attn.to_qkv_mlp_proj")):
            tensors[f"{name}.lora_A.default.weight"] = 0.5 * torch.randn(
                2, module.in_features, generator=g
            )
            tensors[f"{name}.lora_B.default.weight"] = 0.5 * torch.randn(
                module.out_features, 2, generator=g
            )
    save_file(tensors, str(path))
    return path


@pytest.mark.slow
def test_bench_lora_end_to_end(tmp_path, capsys):
    print(f"seed {SEED}")
    model = save_tiny_flux2_pipeline(tmp_path / "klein")
    lora = _release_lora(model, tmp_path / "fov_random.safetensors")
    out = tmp_path / "lora.json"
    code = main(
        ["bench", "lora", "--model", str(model), "--lora", str(lora), "--json", str(out),
         "--prompts", "a cat", "--seeds", "0", "--strengths", "1", "--resolution", "128"]
    )  # fmt: skip
    assert code == 0
    records = json.loads(out.read_text())
    # 2 variants x 2 gazes x (acuity s=1, circle p2, circle p4)
    assert len(records) == 12
    assert {r["model_variant"] for r in records} == {"lora", "base"}
    assert {r["layout"] for r in records} == {"acuity s=1", "circle p2", "circle p4"}
    for r in records:
        assert 0 < r["token_ratio"] < 1 and r["jod"] <= 10.0 + 1e-6
        # What made the numbers (records said none of it): the command, model, device, size.
        assert r["command"].startswith(f"fovea bench lora --model {model} --lora {lora}")
        assert (r["resolution"], r["device"], r["steps"]) == (128, "cpu", 4)
        assert r["model"] and r["seconds"] > 0
    lora_ids = {tuple(r["gaze_px"]) for r in records if r["model_variant"] == "lora"}
    assert len(lora_ids) == 2
    summary = json.loads(out.with_name("lora_summary.json").read_text())
    assert set(summary["medians"]) == {
        "lora", "base", "lora-circle-p2", "lora-circle-p4", "base-circle-p2", "base-circle-p4"
    }  # fmt: skip
    assert set(summary["lora_jod_gain_by_layout"]) == {"acuity s=1", "circle p2", "circle p4"}
    assert out.with_name("lora_jod.png").stat().st_size > 10_000
    assert "LoRA gain" in capsys.readouterr().out


def test_bench_lora_refuses_a_missing_model_or_lora(tmp_path, capsys):
    """One error line (exit 2) before anything loads."""
    assert main(["bench", "lora", "--model", str(tmp_path), "--lora", "x", "--json", "o"]) == 2
    assert "not a pipeline directory" in capsys.readouterr().err
    model = save_tiny_flux2_pipeline(tmp_path / "klein")
    missing = str(tmp_path / "x")
    assert main(["bench", "lora", "--model", str(model), "--lora", missing, "--json", "o"]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_writes_the_prompts_and_seeds_scored_whole(tmp_path, capsys):
    """Ctrl-C in `fovea bench lora` (hours on a GPU at its defaults) said 'interrupted' and wrote
    nothing. The records of the prompts and seeds scored whole by then (both variants, so the
    LoRA's gain compares like with like) and their summary are written, and the line says where.
    The Ctrl-C comes in the run's last module forward (counted in an uninterrupted run), inside
    seed 1's work: seed 0's 12 records are kept."""
    model = save_tiny_flux2_pipeline(tmp_path / "klein")
    lora = _release_lora(model, tmp_path / "fov_random.safetensors")
    argv = ["bench", "lora", "--model", str(model), "--lora", str(lora), "--prompts", "a cat"]
    argv += ["--seeds", "0", "1", "--strengths", "1", "--resolution", "64", "--steps", "1"]
    with module_forwards() as calls:
        assert main([*argv, "--json", str(tmp_path / "all.json")]) == 0
    assert len(json.loads((tmp_path / "all.json").read_text())) == 24
    out = tmp_path / "part.json"
    with module_forwards(ctrl_c_at=len(calls)):
        assert main([*argv, "--json", str(out)]) == 130
    records = json.loads(out.read_text())
    assert len(records) == 12 and {r["seed"] for r in records} == {0}
    assert {r["model_variant"] for r in records} == {"lora", "base"}
    summary = json.loads(out.with_name("part_summary.json").read_text())
    assert (
        summary["interrupted"] is True and None not in summary["lora_jod_gain_by_layout"].values()
    )
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "interrupted; the 12 records of the prompts and seeds scored whole so far and their "
        f"summary are in {out} and beside it (summary 'interrupted': true)"
    )


def test_bench_lora_refuses_a_flux1_directory(tmp_path, capsys):
    """A FLUX.1 directory given where the FLUX.2 [klein] one is expected: the merge stopped with
    'LoRA targets ...to_qkv_mlp_proj, which this FluxTransformer2DModel does not have: a LoRA for
    another model?', blaming the LoRA; the model is now named, before anything loads."""
    from tests.generator.test_img2img import _tiny_flux_pipeline

    flux1 = _tiny_flux_pipeline(tmp_path / "flux1")
    lora = tmp_path / "fov_random.safetensors"
    lora.write_bytes(b"not read")
    capsys.readouterr()  # the tiny pipeline's save bars
    argv = ["bench", "lora", "--model", str(flux1), "--lora", str(lora), "--json", "o.json"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: --model {flux1}: its model_index.json names 'FluxPipeline'; fovea bench lora "
        "measures the release's LoRA, made for FLUX.2 [klein] (Flux2KleinPipeline or "
        "Flux2Pipeline directories)"
    ), err
