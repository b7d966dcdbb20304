"""benchmarks/gpu_flux_bench.py (FLUX-sized transformers on a GPU): its refusals are one line
before any work, and its --smoke run (tiny models on the CPU) writes records that say how they
were made."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_flux_bench.py"


def _script():
    spec = importlib.util.spec_from_file_location("gpu_flux_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the run would start")
def test_without_a_gpu_it_says_so_in_one_line(tmp_path, capsys):
    """It was a traceback ('Torch not compiled with CUDA enabled')."""
    assert _script().main(["--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: device 'cuda' requested")
    assert "--smoke" in err[0] and not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--repeats", "0"], "--repeats: 0 must be at least 1"),  # was a StatisticsError
        (["--json", "{tmp}"], "is a folder"),  # was an IsADirectoryError after the whole run
    ],
)
def test_bad_options_are_refused_before_any_work(tmp_path, capsys, args, says):
    argv = ["--smoke", "--json", str(tmp_path / "r.json")]
    with pytest.raises(SystemExit) as exit_:
        _script().main([*argv, *(a.format(tmp=tmp_path) for a in args)])
    assert exit_.value.code == 2 and says in capsys.readouterr().err


@pytest.mark.slow
def test_smoke_records_say_the_command(tmp_path):
    out = tmp_path / "new" / "r.json"
    argv = ["--smoke", "--repeats", "1", "--json", str(out)]
    assert _script().main(argv) == 0
    records = json.loads(out.read_text())
    assert records and {r["command"] for r in records} == {
        "python benchmarks/gpu_flux_bench.py " + " ".join(argv)
    }
    assert {(r["device"], r["resolution"]) for r in records} == {("cpu", 256)}
