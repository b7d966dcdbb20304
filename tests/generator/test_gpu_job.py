"""The GPU training job, run on the CPU: every stage chains and what comes back fits the device
tool's limits (at most 8 flat files under 16 MiB). It is what a lent GPU runs blind."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_device_training_job_runs_every_stage_and_returns_shippable_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, OUT=str(out), PYTHON=sys.executable, JOB_DIR=str(tmp_path / "job"))
    run = subprocess.run(
        ["bash", "benchmarks/device/train_default.sh", "240"],
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
    assert "base continues from" in log and "teacher pairs at 128 px" in log
    # Reassemble the base as the script says and load base + adapter.
    weights = tmp_path / "weights"
    weights.mkdir()
    parts = sorted(out.glob("default-base.safetensors.part-*"))
    assert len(parts) == 2
    (weights / "default-base.safetensors").write_bytes(b"".join(p.read_bytes() for p in parts))
    for name in ("default.json", "default-foveated-lora.safetensors"):
        (weights / name).write_bytes((out / name).read_bytes())
    from generator.models.default import load_default_generator

    gen = load_default_generator(weights_dir=weights)
    assert gen.model_id == "default-foveated"
