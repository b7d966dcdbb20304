"""``[stimulus] decode``: checked at protocol load, part of a stimulus set's identity, used by the
generation services and recorded in their start record (tiny FLUX.2 directory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.errors import FoveaError
from protocol import load_protocol
from tests.study.conftest import with_service, write_flux2_protocol


def _protocol(folder: Path, *, model, decode: str, name="p.toml") -> Path:
    extra = f'decode = "{decode}"'
    return write_flux2_protocol(folder / name, model=model, extra=extra, name="decode_test")


@pytest.mark.parametrize("model", ["tiny", "default"])
def test_a_pixel_model_refuses_the_foveated_decode(tmp_path, model):
    with pytest.raises(FoveaError, match="works in pixels") as error:
        load_protocol(_protocol(tmp_path, model=model, decode="foveated"))
    assert "\n" not in str(error.value)


def test_an_unknown_decode_is_refused(tmp_path, tiny_dir):
    with pytest.raises(FoveaError, match="stimulus.decode"):
        load_protocol(_protocol(tmp_path, model=tiny_dir, decode="half"))


def test_a_set_built_with_the_full_decode_is_refused_with_the_foveated_one(tiny_dir, tmp_path):
    from stimuli.build import build_stimulus_set
    from stimuli.check import check_stimulus_set

    full = _protocol(tmp_path, model=tiny_dir, decode="full")
    out = tmp_path / "set"
    build_stimulus_set(
        protocol_path=full, out=out, only="references", progress=False, log=lambda *_: None
    )
    check_stimulus_set(out, protocol=load_protocol(full))
    foveated = _protocol(tmp_path, model=tiny_dir, decode="foveated", name="f.toml")
    with pytest.raises(FoveaError, match="decode 'full' in the set, 'foveated' in the protocol"):
        check_stimulus_set(out, protocol=load_protocol(foveated))


def test_the_fingerprint_records_a_foveated_decode_only(tiny_dir):
    from generator.loading import load_generator
    from stimuli.fingerprint import fingerprint

    plain = fingerprint(load_generator(str(tiny_dir)), model=str(tiny_dir), steps=1).as_dict()
    fov = load_generator(str(tiny_dir), decode="foveated")
    assert "decode" not in plain  # sets built before keep their keys
    assert fingerprint(fov, model=str(tiny_dir), steps=1).as_dict()["decode"] == "foveated"


def test_the_service_decodes_as_the_protocol_says_and_records_it(tiny_dir, tmp_path):
    from generator.layout import LayoutSpec
    from protocol.geometry import stimulus_geometry
    from study.service.start import protocol_generation_service, start_service

    p = load_protocol(_protocol(tmp_path, model=tiny_dir, decode="foveated")).protocol
    geometry = stimulus_geometry(p)
    service = start_service(p, geometry=geometry, scenes=None, log=lambda *_: None)
    try:
        assert service.info["decode"] == "foveated"  # the session sidecar's generator record
        assert service.info["sampler"] == "eager"  # static shapes are for CUDA devices
        generator = service._images.generator
        out = generator.generate(
            seed=3,
            geometry=geometry,
            gaze_px=(32.0, 32.0),
            spec=LayoutSpec(mode="acuity", strength=4.0),
            condition="a cat",
            steps=1,
        )
        assert out.sidecar["decode"] == "foveated" and out.sidecar["sampler"] == "eager"
    finally:
        service.close()
    process = protocol_generation_service(
        with_service(p, "process"),
        geometry=geometry,
        scenes=None,
    )
    assert process._config.decode == "foveated"  # the worker's load_generator argument
