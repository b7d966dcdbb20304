"""``fovea bench generator`` reports each stage's share (encode, denoise, decode)."""

from __future__ import annotations

import pytest


def test_bench_records_split_stages():
    from generator.bench import run_generator_benchmark

    records = run_generator_benchmark(model="flux2-tiny", sizes=[128], steps=1)
    assert records
    for record in records:
        shares = record["encode_share"] + record["denoise_share"] + record["decode_share"]
        assert shares == pytest.approx(1.0)
        assert 0 < record["decoded_area_ratio"] <= 1.0
