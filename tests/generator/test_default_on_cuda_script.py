"""The device check of the default model (benchmarks/device/default_on_cuda.py) runs end to end
on the CPU (its dry run: the "device" is the CPU, so its images equal the CPU's exactly)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "device" / "default_on_cuda.py"


@pytest.mark.slow
def test_default_on_cuda_dry_run(tmp_path):
    spec = importlib.util.spec_from_file_location("default_on_cuda", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    argv = ["--json", str(out), "--png", str(png), "--size", "256", "--repeats", "1"]
    assert module.main(argv) == 0
    record = json.loads(out.read_text())
    for key in ("device", "model", "resolution", "seconds_foveated_median", "speedup", "command"):
        assert key in record
    assert record["tokens_foveated"] < record["tokens_full"] == 256
    assert record["foveated_vs_cpu_levels"]["max"] == record["full_vs_cpu_levels"]["max"] == 0
    assert np.asarray(Image.open(png)).shape == (256, 3 * 256, 3)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--repeats", "0"], "--repeats: 0 must be at least 1"),  # was a StatisticsError
        (["--json", "{tmp}"], "is a folder"),  # was an IsADirectoryError after the timings
        (["--png", "{tmp}"], "is a folder"),
    ],
)
def test_bad_options_are_refused_before_any_work(tmp_path, capsys, args, says):
    spec = importlib.util.spec_from_file_location("default_on_cuda", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = ["--json", str(tmp_path / "r.json"), "--png", str(tmp_path / "r.png"), "--size", "64"]
    with pytest.raises(SystemExit) as exit_:
        module.main([*argv, *(a.format(tmp=tmp_path) for a in args)])
    assert exit_.value.code == 2 and says in capsys.readouterr().err
