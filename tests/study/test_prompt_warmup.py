"""Every prompt a session draws is encoded while the generation service warms up, so no trial
pays a prompt's first encode (tiny FLUX.2 directory, three prompts)."""

from __future__ import annotations

from protocol import load_protocol
from tests.study.conftest import with_service, write_flux2_protocol

PROMPTS = ("a cat", "a boat on a lake", "a red door")


def _protocol(tmp_path, tiny_dir, service: str):
    path = write_flux2_protocol(tmp_path / "p.toml", model=tiny_dir, prompts=PROMPTS)
    return with_service(load_protocol(path).protocol, service)


def test_the_thread_service_encodes_every_prompt_at_warm_up(tiny_dir, tmp_path):
    from generator.layout import LayoutSpec
    from protocol.geometry import stimulus_geometry
    from study.generation import GenerationRequest
    from study.service.start import start_service

    p = _protocol(tmp_path, tiny_dir, "thread")
    service = start_service(p, geometry=stimulus_geometry(p), scenes=None, log=lambda *_: None)
    try:
        assert service.info["conditions_encoded"] == len(PROMPTS)
        encoder = service._images.generator.encoder
        assert set(PROMPTS) <= set(encoder._cache)
        encodes = []
        encode_prompt = encoder._encode_prompt
        encoder._encode_prompt = lambda *a: encodes.append(a) or encode_prompt(*a)
        for prompt in PROMPTS:  # the trials: no encode left to do
            request = GenerationRequest(
                kind="foveated", seed=3, conditioning=prompt, spec=LayoutSpec(mode="acuity"),
                gaze_px=(20.0, 40.0),
            )  # fmt: skip
            ticket = service.submit(request)
            assert ticket.wait(120)
            assert ticket.result().image.shape == (64, 64, 3)
        assert encodes == []
    finally:
        service.close()


def test_the_process_service_encodes_every_prompt_at_warm_up(tiny_dir, tmp_path):
    from protocol.geometry import stimulus_geometry
    from study.service.start import start_service

    p = _protocol(tmp_path, tiny_dir, "process")
    service = start_service(p, geometry=stimulus_geometry(p), scenes=None, log=lambda *_: None)
    try:
        assert service.info["conditions_encoded"] == len(PROMPTS)
    finally:
        service.close()
