"""``[stimulus] lora``: checked at protocol load, part of a stimulus set's identity, loaded by the
generation services and recorded in their start record (tiny FLUX.2 directory, synthetic LoRA in
the release's format)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from generator.errors import FoveaError
from protocol import load_protocol
from tests.study.conftest import with_service, write_flux2_protocol


@pytest.fixture(scope="module")
def lora_file(tiny_dir, tmp_path_factory) -> Path:
    """A release-format LoRA (``<module>.lora_A.default.weight``) next to the protocols."""
    from safetensors.torch import save_file

    from generator.loading import load_generator

    transformer = load_generator(str(tiny_dir)).denoiser.transformer
    g = torch.Generator().manual_seed(0)
    tensors = {}
    for name, module in transformer.named_modules():
        if name.endswith(("attn.to_q", "attn.to_qkv_mlp_proj")):
            tensors[f"{name}.lora_A.default.weight"] = torch.randn(
                2, module.in_features, generator=g
            )
            tensors[f"{name}.lora_B.default.weight"] = torch.randn(
                module.out_features, 2, generator=g
            )
    path = tmp_path_factory.mktemp("protocols") / "fov_random.safetensors"
    save_file(tensors, str(path))
    return path


def _protocol(folder: Path, *, model, lora: str | None, name="p.toml") -> Path:
    line = "" if lora is None else f'lora = "{lora}"'
    return write_flux2_protocol(folder / name, model=model, extra=line, name="lora_test")


def test_a_relative_lora_is_relative_to_the_protocol_file(tiny_dir, lora_file, monkeypatch):
    monkeypatch.chdir(tiny_dir)  # not the protocol's folder
    loaded = load_protocol(_protocol(lora_file.parent, model=tiny_dir, lora=lora_file.name))
    assert loaded.protocol.stimulus.lora == str(lora_file)
    without = load_protocol(_protocol(lora_file.parent, model=tiny_dir, lora=None, name="n.toml"))
    assert without.protocol.stimulus.lora is None


def test_a_missing_lora_file_is_one_line_naming_it(tiny_dir, lora_file):
    path = _protocol(lora_file.parent, model=tiny_dir, lora="absent.safetensors", name="m.toml")
    with pytest.raises(FoveaError) as error:
        load_protocol(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "stimulus.lora" in message
    assert str(lora_file.parent / "absent.safetensors") in message


@pytest.mark.parametrize("model", ["tiny", "default"])
def test_a_lora_needs_a_model_directory(lora_file, model):
    path = _protocol(lora_file.parent, model=model, lora=lora_file.name, name=f"{model}.toml")
    with pytest.raises(FoveaError, match=f"model '{model}' is not a directory"):
        load_protocol(path)


def test_a_lora_needs_a_flux2_directory(lora_file, tmp_path, capsys):
    """docs/protocol.md: with `lora`, `model` must be a FLUX.2 directory. A FLUX.1 directory
    passed fovea check and stopped `fovea stimuli build` (and a session) after loading, with the
    merge blaming the LoRA ('a LoRA for another model?'); refused at load, in one line."""
    from fovea_cli.main import main
    from tests.generator.test_img2img import _tiny_flux_pipeline

    flux1 = _tiny_flux_pipeline(tmp_path / "flux1")
    path = _protocol(tmp_path, model="flux1", lora=str(lora_file))  # relative to the protocol
    capsys.readouterr()  # the tiny pipeline's save bars
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {path}: field stimulus: lora needs a FLUX.2 pipeline directory as model (the "
        f"release's LoRAs fit FLUX.2 [klein]); model '{flux1}' is a FluxPipeline directory"
    ), err


def test_the_stimulus_set_key_changes_with_the_lora(tiny_dir, lora_file):
    from generator.loading import load_generator
    from protocol.geometry import geometry_record, stimulus_geometry
    from stimuli.fingerprint import fingerprint
    from stimuli.plan import plan_stimuli
    from stimuli.store import stimulus_key

    p = load_protocol(_protocol(lora_file.parent, model=tiny_dir, lora=lora_file.name)).protocol
    geometry = geometry_record(stimulus_geometry(p))
    (planned, *_) = plan_stimuli(p)
    plain = fingerprint(load_generator(str(tiny_dir)), model=str(tiny_dir), steps=1).as_dict()
    merged = load_generator(str(tiny_dir), lora=p.stimulus.lora)
    with_lora = fingerprint(merged, model=str(tiny_dir), steps=1, lora=p.stimulus.lora).as_dict()
    assert "lora_sha256" not in plain  # sets built without a LoRA keep their keys
    assert len(with_lora["lora_sha256"]) == 64
    assert with_lora["weights_sha256"] != plain["weights_sha256"]
    keys = {
        stimulus_key(fingerprint=f, geometry=geometry, stimulus=planned) for f in (plain, with_lora)
    }
    assert len(keys) == 2


def test_a_set_built_without_the_lora_is_refused_with_it(tiny_dir, lora_file, tmp_path):
    from stimuli.build import build_stimulus_set
    from stimuli.check import check_stimulus_set

    plain = _protocol(tmp_path, model=tiny_dir, lora=None)
    out = tmp_path / "set"
    build_stimulus_set(
        protocol_path=plain, out=out, only="references", progress=False, log=lambda *_: None
    )
    check_stimulus_set(out, protocol=load_protocol(plain))
    with_lora = _protocol(tmp_path, model=tiny_dir, lora=str(lora_file), name="l.toml")
    with pytest.raises(FoveaError, match="LoRA none in the set, sha256 "):
        check_stimulus_set(out, protocol=load_protocol(with_lora))


def test_the_services_load_the_lora_and_record_it(tiny_dir, lora_file):
    from protocol.geometry import stimulus_geometry
    from study.service.start import protocol_generation_service, start_service

    p = load_protocol(_protocol(lora_file.parent, model=tiny_dir, lora=lora_file.name)).protocol
    geometry = stimulus_geometry(p)
    service = start_service(p, geometry=geometry, scenes=None, log=lambda *_: None)
    try:
        assert service.info["lora"] == str(lora_file)  # the session sidecar's generator record
        assert f"+ LoRA {lora_file.name}" in service.info["model_id"]
    finally:
        service.close()
    process = protocol_generation_service(
        with_service(p, "process"),
        geometry=geometry,
        scenes=None,
    )
    assert process._config.lora == str(lora_file)  # the worker's load_generator argument


@pytest.mark.slow
def test_a_generator_process_that_cannot_start_leaks_nothing(tiny_dir, lora_file, tmp_path):
    """A process service whose generator failed to load (a LoRA for another model size) was
    killed after saying so, and Python then printed 'resource_tracker: There appear to be 1
    leaked semaphore objects' under the one-line error (the loading bars' lock in the killed
    process). The process now exits on its own: the error is all that is printed."""
    import subprocess
    import sys

    from safetensors.torch import load_file, save_file

    wrong = {
        k: torch.cat([v, v], dim=-1) if ".lora_A." in k else v
        for k, v in load_file(lora_file).items()
    }
    save_file(wrong, str(tmp_path / "other_size.safetensors"))
    protocol = _protocol(tmp_path, model=tiny_dir, lora="other_size.safetensors")
    code = (
        "import sys\n"
        "from protocol import load_protocol\n"
        "from protocol.geometry import stimulus_geometry\n"
        "from study.service import ServiceUnavailable\n"
        "from study.service.start import start_service\n"
        "from tests.study.conftest import with_service\n"
        f"p = with_service(load_protocol({str(protocol)!r}).protocol, 'process')\n"
        "try:\n"
        "    start_service(p, geometry=stimulus_geometry(p), scenes=None, log=lambda *_: None)\n"
        "except ServiceUnavailable as error:\n"
        "    print('refused:', error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2]
    )
    assert "refused: the generator could not start: LoRA for" in done.stdout, done.stderr
    assert "leaked" not in done.stderr, done.stderr
