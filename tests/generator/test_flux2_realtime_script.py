"""The prepared GPU timing script runs end to end at tiny sizes on the CPU (its dry run)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

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
