"""The generator's subcommands, run as users run them (a subprocess of the installed CLI)."""

import json
import subprocess
import sys

import pytest

FOVEA = [sys.executable, "-m", "study.cli"]


def run(*args, cwd=None):
    return subprocess.run([*FOVEA, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_generate_writes_image_and_sidecar(tmp_path):
    out = tmp_path / "fov.png"
    r = run(
        "generate",
        "--model",
        "tiny",
        "--size",
        "256",
        "--gaze",
        "100,120",
        "--seed",
        "4",
        "--out",
        str(out),
        "--mask-out",
        str(tmp_path / "mask.png"),
    )
    assert r.returncode == 0, r.stderr
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["seed"] == 4 and side["tokens"] < side["tokens_full"] == 256
    assert len(side["step_seconds"]) == side["steps"]
    assert side["geometry"]["image_size_px"] == [256, 256]
    assert (tmp_path / "mask.png").stat().st_size > 0
    full = tmp_path / "full.png"
    assert (
        run(
            "generate",
            "--model",
            "tiny",
            "--size",
            "256",
            "--seed",
            "4",
            "--full",
            "--out",
            str(full),
        ).returncode
        == 0
    )
    assert json.loads(full.with_suffix(".json").read_text())["token_ratio"] == 1.0


def test_mask_draws_layout(tmp_path):
    r = run("mask", "--gaze-deg=-3,2", "--strength", "0.5", "--out", str(tmp_path / "m.png"))
    assert r.returncode == 0, r.stderr
    from PIL import Image

    assert Image.open(tmp_path / "m.png").size == (1024, 1024)


@pytest.mark.parametrize(
    "args, message",
    [
        (["mask", "--gaze", "99999,10", "--out", "x.png"], "outside"),
        (["mask", "--gaze", "ten,10", "--out", "x.png"], "--gaze expects two numbers"),
        (
            ["mask", "--display", "2560,1440,-5,33,60", "--out", "x.png"],
            "width_cm must be a positive",
        ),
        (["mask", "--size", "1000", "--out", "x.png"], "does not divide into 16 px tokens"),
        (
            ["generate", "--model", "/no/such/model", "--out", "x.png"],
            "unknown model '/no/such/model'",
        ),
        (["mask", "--strength", "-2", "--out", "x.png"], "strength must be >= 0"),
    ],
)
def test_bad_input_gives_one_clear_line(tmp_path, args, message):
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
