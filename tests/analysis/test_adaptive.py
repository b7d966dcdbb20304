"""The lockstep QUEST+ used for validation picks exactly the levels the study's own QUEST+ track
(study.procedures.tracks.QuestPlusTrack, real questplus) picks, given the same responses."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.adaptive import LockstepQuestPlus, QuestPlusGrid

tracks = pytest.importorskip(
    "study.procedures.tracks", reason="the study package provides the reference"
)
schema = pytest.importorskip("protocol.schema")

SEED = 99


@pytest.mark.parametrize(
    "condition_kw,settings_kw",
    [
        ({}, {}),  # the schema defaults: 25 levels over 0.1..8, 25 thresholds
        (
            {"level_min": 0.2, "level_max": 4.0},
            {
                "n_levels": 20,
                "n_thresholds": 20,
                "widths_log10": [0.1, 0.2, 0.4],
                "lapse_rates": [0.0, 0.04],
            },
        ),
        ({"levels": [0.3, 0.5, 0.8, 1.3, 2.0, 3.2]}, {}),
    ],
)
def test_same_levels_as_the_study_track(condition_kw, settings_kw):
    print(f"seed {SEED}")
    condition = schema.Condition(name="c", **condition_kw)
    settings = schema.QuestPlusSettings(**settings_kw)
    n_runs, n_trials = 2, 30
    refs = [
        tracks.QuestPlusTrack(name="c", condition=condition, settings=settings, max_trials=n_trials)
        for _ in range(n_runs)
    ]
    grid = QuestPlusGrid.for_condition(
        level_min=condition.level_min,
        level_max=condition.level_max,
        levels=tuple(condition.levels),
        n_levels=settings.n_levels,
        n_thresholds=settings.n_thresholds,
        widths_log10=tuple(settings.widths_log10),
        lapse_rates=tuple(settings.lapse_rates),
    )
    ours = LockstepQuestPlus(grid=grid, n_runs=n_runs)
    rng = np.random.default_rng(SEED)
    for t in range(n_trials):
        idx, levels = ours.next_levels()
        expected = np.array([r.next_level() for r in refs])
        np.testing.assert_allclose(levels, expected, rtol=1e-12, err_msg=f"trial {t + 1}")
        correct = rng.random(n_runs) < np.where(levels > 1.0, 0.95, 0.6)
        for r, lv, c in zip(refs, expected, correct, strict=True):
            r.update(level=float(lv), correct=bool(c))
        ours.update(indices=idx, correct=correct)
