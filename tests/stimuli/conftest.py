"""Fixtures for the stimulus-set tests: a small protocol (128 px, 2 sampler steps) and one set
built from it for the whole session."""

from __future__ import annotations

from pathlib import Path

import pytest

PROTOCOL = """\
name = "stim_test"

[stimulus]
model = "tiny"
image_width_px = 128
image_height_px = 128
classes = [0, 1]
seed_start = {seed_start}
seed_count = 2
num_steps = 2

[[conditions]]
name = "centre"
fixation_deg = [0.0, 0.0]
levels = [0.5, 2.0]
level_min = 0.1
level_max = 4.0

[[conditions]]
name = "right"
fixation_deg = [1.0, 0.0]
levels = [1.0]
level_min = 0.1
level_max = 4.0

[procedure]
method = "constant"
"""


def write_protocol(path: Path, *, seed_start: int = 7) -> Path:
    path.write_text(PROTOCOL.format(seed_start=seed_start), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def protocol_path(tmp_path_factory) -> Path:
    return write_protocol(tmp_path_factory.mktemp("protocol") / "stim_test.toml")


@pytest.fixture(scope="session")
def built_set(protocol_path, tmp_path_factory) -> Path:
    """The protocol's full set (4 references, 12 foveated images), built once."""
    from stimuli.build import build_stimulus_set

    out = tmp_path_factory.mktemp("sets") / "stim_test"
    build_stimulus_set(protocol_path=protocol_path, out=out, progress=False, log=lambda *_: None)
    return out
