"""Frame statistics and the realtime bench's trial plan (pure functions, no window)."""

from __future__ import annotations

import pytest

from study.service.bench import BenchConfig, plan_trials
from study.service.frameloop import frame_stats


def test_frame_stats_counts_intervals_over_one_and_a_half_periods():
    period = 1 / 60
    stats = frame_stats([period] * 8 + [1.49 * period, 1.51 * period, 3 * period], period_s=period)
    assert stats.frames == 11 and stats.dropped_frames == 2
    assert stats.interval_median_s == pytest.approx(period)
    assert stats.interval_max_s == pytest.approx(3 * period)
    assert frame_stats([], period_s=period).frames == 0


def test_bench_plan_is_seeded_and_has_off_target_landings():
    config = BenchConfig(trials=40, seed=3, off_target_prob=0.25)
    print("seed 3")
    a, b = plan_trials(config), plan_trials(config)
    assert a == b
    off = [p for p in a if p.off_target]
    assert 4 <= len(off) <= 18
    for p in a:
        dx, dy = p.landing_deg[0] - p.target_deg[0], p.landing_deg[1] - p.target_deg[1]
        err = (dx * dx + dy * dy) ** 0.5
        if p.off_target:
            assert 0.8 <= err <= 1.3  # beyond the 0.5 deg speculation tolerance
        assert 0.12 <= p.saccade_s <= 0.4
    assert plan_trials(BenchConfig(trials=40, seed=4)) != a
