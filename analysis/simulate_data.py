"""Simulated data sets in the study's exact layout, for tests, benchmarks and trying the report.

Writes ``DATA/sub-<p>/ses-<s>/beh/sub-<p>_ses-<s>_task-<task>_beh.tsv`` and its ``_beh.json``
sidecar through the session data contract (``protocol.session_data``: the same columns, cells
and sidecar fields as ``fovea simulate``), but in a second instead of a session's worth of
generation: observers are parametric (the study's ``ParametricObserver`` model: a cumulative normal on log10 level with
psignifit's width), so the true thresholds are known and written to the sidecars
(``true_thresholds``) and returned.

Usage from the command line::

    python -m analysis.simulate_data OUT_DIR --participants 8 --trials 120 --procedure questplus
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from scipy import special

from analysis.adaptive import LockstepQuestPlus, QuestPlusGrid
from analysis.simulate_session import TokenCounter, protocol_dict, write_session
from analysis.simulation_spec import (
    C_WIDTH,
    SimCondition,
    SimulationSpec,
    constant_levels,
    p_correct_parametric,
)
from generator.arg_types import nonnegative_int, positive_int, seed_int
from protocol.identity import settings_sha256

__all__ = [
    "SimCondition",
    "SimulationSpec",
    "constant_levels",
    "p_correct_parametric",
    "simulate_dataset",
]


def simulate_dataset(*, out_dir: str | Path, spec: SimulationSpec) -> list[dict]:
    """Write a simulated data set below ``out_dir`` (created; existing sessions are refused).

    Returns:
        One record per participant x condition: participant, observer, condition, threshold
        (true, level units), width_log10, lapse.
    """
    out = Path(out_dir)
    people = [(f"{i + 1:02d}", "parametric") for i in range(spec.participants)]
    people += [(f"vdp{i + 1:02d}", "perceptual") for i in range(spec.perceptual_participants)]
    # Participant thresholds come from their own stream, so more conditions or trials keep them.
    rng_t = _rng(spec.seed, 0)
    truth: list[dict] = []
    thresholds: dict[str, dict[str, float]] = {}
    for label, observer in people:
        offset = rng_t.normal(0.0, spec.between_sd_log10) if observer != "perceptual" else 0.0
        factor = spec.perceptual_threshold_factor if observer == "perceptual" else 1.0
        thresholds[label] = {}
        lapse = float(spec.overrides.get(label, {}).get("lapse", spec.lapse))
        for c in spec.conditions:
            thr = c.threshold * factor * 10.0**offset
            thresholds[label][c.name] = thr
            truth.append(
                {
                    "participant": label,
                    "observer": observer,
                    "condition": c.name,
                    "threshold": thr,
                    "width_log10": spec.width_log10,
                    "lapse": lapse,
                }
            )
    sequences = _level_sequences(spec, people, thresholds)
    token_cache = TokenCounter(spec)
    sha = settings_sha256(protocol_dict(spec))
    for i, (label, observer) in enumerate(people):
        rng = _rng(spec.seed, 3, i)
        write_session(
            out, spec, label, observer, thresholds[label], sequences[label], rng, token_cache, sha
        )
    return truth


def _rng(seed: int, *key: int) -> np.random.Generator:
    """An independent stream per purpose and index (keyed, so call order does not matter)."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=tuple(key)))


def _level_sequences(
    spec, people, thresholds
) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per participant and condition: (levels, correct) of the responded trials, in track order."""
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {p: {} for p, _ in people}
    n = spec.trials_per_condition
    for ci, cond in enumerate(spec.conditions):
        if spec.procedure == "constant":
            for i, (label, _) in enumerate(people):
                rng = _rng(spec.seed, 1, i, ci)
                lv = constant_levels(cond)
                seq = np.resize(np.repeat(lv, math.ceil(n / lv.size)), n)
                seq = seq[rng.permutation(n)]
                lapse = float(spec.overrides.get(label, {}).get("lapse", spec.lapse))
                p = p_correct_parametric(
                    seq,
                    threshold=thresholds[label][cond.name],
                    width_log10=spec.width_log10,
                    lapse=lapse,
                )
                out[label][cond.name] = (seq, rng.random(n) < p)
        else:
            grid = QuestPlusGrid.for_condition(
                level_min=cond.level_min,
                level_max=cond.level_max,
                levels=cond.levels,
                n_levels=spec.n_levels,
                n_thresholds=spec.n_thresholds,
                widths_log10=spec.widths_log10,
                lapse_rates=spec.lapse_rates,
            )
            qp = LockstepQuestPlus(grid=grid, n_runs=len(people))
            thr = np.array([thresholds[p][cond.name] for p, _ in people])
            lapses = np.array(
                [float(spec.overrides.get(p, {}).get("lapse", spec.lapse)) for p, _ in people]
            )
            rng = _rng(spec.seed, 2, ci)
            levels = np.empty((len(people), n))
            correct = np.empty((len(people), n), dtype=bool)
            for t in range(n):
                idx, lv = qp.next_levels()
                p = 0.5 + (0.5 - lapses) * special.ndtr(
                    C_WIDTH * (np.log10(lv) - np.log10(thr)) / spec.width_log10
                )
                c = rng.random(len(people)) < p
                qp.update(indices=idx, correct=c)
                levels[:, t], correct[:, t] = lv, c
            for i, (label, _) in enumerate(people):
                out[label][cond.name] = (levels[i], correct[i])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.simulate_data", description=__doc__.split("\n")[0]
    )
    parser.add_argument("out", help="data directory to create")
    parser.add_argument("--participants", type=positive_int, default=8)
    parser.add_argument(
        "--trials", type=positive_int, default=120, help="responded trials per condition"
    )
    parser.add_argument("--procedure", choices=("constant", "questplus"), default="constant")
    parser.add_argument(
        "--perceptual", type=nonnegative_int, default=0, help="model-observer sessions to add"
    )
    parser.add_argument("--seed", type=seed_int, default=0)
    args = parser.parse_args(argv)
    spec = SimulationSpec(
        participants=args.participants,
        trials_per_condition=args.trials,
        procedure=args.procedure,
        perceptual_participants=args.perceptual,
        seed=args.seed,
    )
    truth = simulate_dataset(out_dir=args.out, spec=spec)
    print(
        f"wrote {len({t['participant'] for t in truth})} sessions to {args.out} (seed {args.seed})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
