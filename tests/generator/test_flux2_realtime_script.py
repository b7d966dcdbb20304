"""The prepared GPU timing script runs end to end at tiny sizes on the CPU (its dry run)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "device" / "realtime_flux2.py"


def _script():
    spec = importlib.util.spec_from_file_location("realtime_flux2", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_are_saved_after_every_record(tmp_path):
    """The device's time limit can cut a run short: what was measured must already be on disk."""
    results = _script().Results(str(tmp_path / "r.json"), str(tmp_path / "d.json"))
    for i in range(3):
        results.add_frames({"model": "m", "frame": i})
        assert [r["frame"] for r in json.loads((tmp_path / "r.json").read_text())] == [
            *range(i + 1)
        ]
    results.add_decode({"decode": "full"})
    assert json.loads((tmp_path / "d.json").read_text()) == [{"decode": "full"}]


@pytest.mark.slow
def test_realtime_script_dry_run(tmp_path):
    module = _script()
    out = tmp_path / "records.json"
    decode_out = tmp_path / "decode.json"
    argv = ["--json", str(out), "--decode-json", str(decode_out), "--smoke", "--repeats", "2"]
    assert module.main(argv) == 0
    decodes = json.loads(decode_out.read_text())
    assert {(r["decode"], r["memory_format"]) for r in decodes} == {
        (d, m) for d in ("full", "foveated") for m in ("contiguous_format", "channels_last")
    }
    assert len(decodes) == 8 and all(r["median_s"] > 0 for r in decodes)
    records = json.loads(out.read_text())
    assert {r["model"].split("-sized")[0] for r in records} == {"flux2-klein-4b", "flux1-schnell"}
    for record in records:
        for key in ("device", "model", "resolution", "steps", "latency_median_s", "latency_p95_s"):
            assert key in record
        assert record["latency_p95_s"] >= record["latency_median_s"] > 0
        assert record["speedup"] > 0
    assert [r["speedup"] for r in records if r["setting"] == "full"] == [1.0] * 6
    # every layout eager and at static shapes (static buffers run eagerly on the CPU), both models
    static = [(r["model"], r["setting"]) for r in records if r["sampler"] == "static"]
    eager = [(r["model"], r["setting"]) for r in records if r["sampler"] == "eager"]
    assert len(static) == 8 and set(static) <= set(eager)
    # the static sampler agrees with the eager one (on the GPU: the graphs against eager)
    agreement = [r["static_vs_eager"] for r in records if r["sampler"] == "static"]
    assert all(a["rel_rms_diff"] < 1e-4 for a in agreement)
    # and through the kit's own pipeline (FoveatedGenerator.generate), full and acuity s=1
    pipeline = [(r["model"], r["setting"]) for r in records if r["sampler"] == "pipeline"]
    assert len(pipeline) == 4 and set(pipeline) <= set(static)


def _capture_fails(*, always: bool):
    """A StaticSampler class whose CUDA graph capture fails as a real one can on a GPU
    ("operation not permitted when stream is capturing"); ``always``: the static loop fails
    without graphs too."""
    from generator.static_sampler import CaptureError, StaticSampler

    class Sampler(StaticSampler):
        def __init__(self, denoiser, graphs=None):
            super().__init__(denoiser, graphs=False)
            self.graphs = graphs is None  # as on a GPU: graphs unless turned off

        def _capture(self, bucket):  # the real one wraps whatever fails in a CaptureError
            raise CaptureError("operation not permitted when stream is capturing")

        def _step(self, bucket):
            if always:
                raise RuntimeError("CUDA error: operation failed due to a previous error")
            super()._step(bucket)

    return Sampler


def _klein_records_when_capture_fails(tmp_path, monkeypatch, *, always: bool) -> list[dict]:
    """The saved records of the smoke klein model timed with ``_capture_fails(always=...)``."""
    import argparse

    import torch

    module = _script()
    monkeypatch.setattr(module, "StaticSampler", _capture_fails(always=always))
    args = argparse.Namespace(
        smoke=True, smoke_px=128, compile=False, steps=2, repeats=1, decode_json=None
    )
    results = module.Results(str(tmp_path / "r.json"), None)
    module.time_model(
        "flux2-klein-4b", args, results, device="cpu", dtype=torch.float32, command="test"
    )
    return json.loads((tmp_path / "r.json").read_text())


def test_a_failed_capture_falls_back_to_static_shapes_without_graphs(tmp_path, monkeypatch):
    """The capture has never run on a real GPU: if it fails there, the run keeps timing the same
    static shapes without graphs (sampler ``static``) instead of losing the model."""
    records = _klein_records_when_capture_fails(tmp_path, monkeypatch, always=False)
    samplers = [r["sampler"] for r in records]
    assert samplers.count("static") == 4 and samplers.count("pipeline") == 2
    static = [r["static_vs_eager"]["rel_rms_diff"] for r in records if r["sampler"] == "static"]
    assert max(static) < 1e-4


def test_a_broken_static_sampler_keeps_the_eager_records(tmp_path, monkeypatch):
    """When the static loop fails even without graphs (a GPU context left unusable), the model's
    eager records stay and the run goes on (the next model runs in its own process)."""
    records = _klein_records_when_capture_fails(tmp_path, monkeypatch, always=True)
    assert [r["sampler"] for r in records] == ["eager"] * 5  # four layouts and the release's CRPA


def test_append_keeps_the_records_of_earlier_processes(tmp_path):
    path = tmp_path / "r.json"
    _script().Results(str(path), None).add_frames({"model": "klein"})
    later = _script().Results(str(path), None, append=True)
    later.add_frames({"model": "schnell"})
    assert [r["model"] for r in json.loads(path.read_text())] == ["klein", "schnell"]
    assert _script().Results(str(path), None).frames == []  # without append: a fresh run


@pytest.mark.slow
def test_dry_run_in_the_gpus_dtype(tmp_path):
    """bfloat16, as on the GPU: every stage (sampling, static shapes, the kit's pipeline, the
    foveated decode) takes the GPU's dtypes; the static sampler agrees with the eager one to
    bf16 rounding (about 1e-3 relative RMS here; a wrong mask would give about 1)."""
    out = tmp_path / "records.json"
    argv = ["--json", str(out), "--smoke", "--repeats", "1", "--models", "flux2-klein-4b"]
    # 96 px: bf16 runs slowly on a CPU; at 24 x 24 tokens the static bucket is still padded
    assert _script().main([*argv, "--smoke-px", "96", "--dtype", "bfloat16"]) == 0
    records = json.loads(out.read_text())
    assert len(records) == 11 and {r["dtype"] for r in records} == {"bfloat16"}
    static = [r["static_vs_eager"]["rel_rms_diff"] for r in records if r["sampler"] != "eager"]
    assert static and max(static) < 0.02
    assert all(
        r["static_vs_eager"]["tokens"] < r["tokens_full"] for r in records if r["static_vs_eager"]
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the run would start")
def test_without_a_gpu_and_smoke_it_refuses_in_one_line(tmp_path, capsys):
    """Without --smoke on a CPU-only machine it timed the 4B-sized models on the CPU: ten
    minutes without a line (hours in all). It says there is no GPU and names --smoke."""
    assert _script().main(["--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no CUDA GPU here") and "--smoke" in err[0]
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--repeats", "0"], "--repeats: 0 must be at least 1"),  # was a StatisticsError
        (["--steps", "0"], "--steps: 0 must be at least 1"),
        (["--json", "{tmp}"], "is a folder"),  # was an IsADirectoryError at the first record
        (["--decode-json", "{tmp}"], "is a folder"),
    ],
)
def test_bad_options_are_refused_before_any_work(tmp_path, capsys, args, says):
    argv = ["--smoke", "--json", str(tmp_path / "r.json")]
    with pytest.raises(SystemExit) as exit_:
        _script().main([*argv, *(a.format(tmp=tmp_path) for a in args)])
    assert exit_.value.code == 2 and says in capsys.readouterr().err
