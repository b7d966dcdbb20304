"""The GPU training job, run on the CPU with a tiny model: base then foveated post-training chain,
and what comes back fits the device tool's limits (at most 8 flat files under 16 MiB). It is what
a lent GPU runs blind."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = {"heads": 1, "head_dim": 32, "single_blocks": 1, "rope_axes": [8, 12, 12]}


@pytest.mark.slow
def test_device_training_job_runs_every_stage_and_returns_shippable_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    env = dict(
        os.environ,
        OUT=str(out),
        PYTHON=sys.executable,
        JOB_DIR=str(tmp_path / "job"),
        BASE_INIT="none",
        MODEL_JSON=json.dumps(TINY),
    )
    run = subprocess.run(
        ["bash", "benchmarks/device/train_default.sh", "100"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(run.stdout[-3000:], run.stderr[-3000:])
    assert run.returncode == 0
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(files) <= 8 and all(p.parent == out for p in files)
    assert all(p.stat().st_size < 16 * 1024 * 1024 for p in files)
    log = (out / "job.log").read_text()
    assert "base starts afresh" in log and "foveated until" in log
    assert "teacher" not in log and "consistency" not in log
    job = json.loads((out / "job.json").read_text())
    assert job["base"]["steps"] > 0 and job["foveated"]["steps"] > 0
    assert job["elapsed_s"] <= 100 + 15
    # Reassemble the base as the script says and load base + adapter.
    weights = tmp_path / "weights"
    weights.mkdir()
    parts = sorted(out.glob("default-base.safetensors.part-*"))
    assert parts
    (weights / "default-base.safetensors").write_bytes(b"".join(p.read_bytes() for p in parts))
    for name in ("default.json", "default-foveated-lora.safetensors"):
        (weights / name).write_bytes((out / name).read_bytes())
    record = json.loads((weights / "default.json").read_text())
    assert record["config"]["heads"] == 1 and record["foveated"]["steps"] > 0
    from generator.geometry import StimulusGeometry, default_display
    from generator.layout import LayoutSpec
    from generator.models.weights_io import load_default_generator
    from generator.scene import Scene

    gen = load_default_generator(weights_dir=weights)
    assert gen.model_id == "default-foveated"
    geometry = StimulusGeometry(display=default_display(), image_width_px=64, image_height_px=64)
    scene = Scene(pixels=np.full((16, 16, 3), 128, dtype=np.uint8), source="grey")
    image = gen.generate(
        seed=0, geometry=geometry, gaze_px=(32.0, 32.0), spec=LayoutSpec(), scene=scene
    ).image
    assert image.shape == (64, 64, 3)


def test_a_job_whose_base_made_no_step_keeps_the_shipped_set(tmp_path):
    """A budget whose base share start-up used up (a slow start on a lent machine) left a base
    run of 0 steps, which the export refuses (its weights are the untrained --init): the job
    then failed at the export. Now it leaves the base out of the export; with no adapter either,
    it exports nothing, says so, and its weights folder is the shipped set."""
    out = tmp_path / "out"
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable)
    run = subprocess.run(
        ["bash", "generator/training/gpu_job.sh", "27"],  # the base gets 1 s: start-up is longer
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(run.stdout[-3000:], run.stderr[-3000:])
    assert run.returncode == 0
    job = json.loads((out / "job.json").read_text())
    assert job["base"]["steps"] == 0
    log = (out / "job.log").read_text()
    assert "base made no training step" in log and "nothing was trained" in log
    shipped = REPO / "generator" / "models" / "weights"
    for path in shipped.iterdir():
        assert (out / "weights" / path.name).read_bytes() == path.read_bytes(), path.name
