"""``[stimulus] dtype``: checked at protocol load, part of a stimulus set's identity, used by the
generation services and the realtime bench, recorded in their start record (tiny FLUX.2
directory in bfloat16 on the CPU, as FLUX models run on a GPU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.errors import FoveaError
from protocol import load_protocol
from tests.study.conftest import with_service, write_flux2_protocol


def _protocol(folder: Path, *, model, dtype: str | None, name="p.toml") -> Path:
    extra = "" if dtype is None else f'dtype = "{dtype}"'
    return write_flux2_protocol(folder / name, model=model, extra=extra, name="dtype_test")


def test_float32_by_default_and_an_unknown_dtype_is_refused(tmp_path, tiny_dir):
    assert load_protocol(
        _protocol(tmp_path, model=tiny_dir, dtype=None)
    ).protocol.stimulus.dtype == ("float32")
    with pytest.raises(FoveaError, match="stimulus.dtype"):
        load_protocol(_protocol(tmp_path, model=tiny_dir, dtype="float8"))


def test_the_service_loads_the_protocols_dtype_and_records_it(tiny_dir, tmp_path):
    from generator.layout import LayoutSpec
    from protocol.geometry import stimulus_geometry
    from study.generation import GenerationRequest
    from study.service.start import protocol_generation_service, start_service

    p = load_protocol(_protocol(tmp_path, model=tiny_dir, dtype="bfloat16")).protocol
    geometry = stimulus_geometry(p)
    service = start_service(p, geometry=geometry, scenes=None, log=lambda *_: None)
    try:
        assert service.info["dtype"] == "bfloat16"  # the session sidecar's generator record
        assert service._images.generator.dtype_name == "bfloat16"
        request = GenerationRequest(
            kind="foveated", seed=3, conditioning="a cat", spec=LayoutSpec(mode="acuity"),
            gaze_px=(20.0, 40.0),
        )  # fmt: skip
        ticket = service.submit(request)
        assert ticket.wait(120) and ticket.result().image.shape == (64, 64, 3)
    finally:
        service.close()
    process = protocol_generation_service(
        with_service(p, "process"), geometry=geometry, scenes=None
    )
    assert process._config.dtype == "bfloat16"  # the worker's load_generator argument


def test_a_set_built_in_float32_is_refused_in_bfloat16(tiny_dir, tmp_path):
    from stimuli.build import build_stimulus_set
    from stimuli.check import check_stimulus_set
    from stimuli.manifest import read_manifest

    float32 = _protocol(tmp_path, model=tiny_dir, dtype=None)
    out = tmp_path / "set"
    build_stimulus_set(
        protocol_path=float32, out=out, only="references", progress=False, log=lambda *_: None
    )
    assert read_manifest(out / "manifest.json")["model"]["dtype"] == "float32"
    check_stimulus_set(out, protocol=load_protocol(float32))
    bf16 = _protocol(tmp_path, model=tiny_dir, dtype="bfloat16", name="b.toml")
    with pytest.raises(FoveaError, match="dtype 'float32' in the set, 'bfloat16' in the protocol"):
        check_stimulus_set(out, protocol=load_protocol(bf16))
