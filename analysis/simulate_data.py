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
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from scipy import special

from analysis.adaptive import LockstepQuestPlus, QuestPlusGrid
from generator.errors import FoveaError
from protocol.geometry import display_record
from protocol.schema import Condition, DisplaySettings
from protocol.session_data import beh_sidecar, new_row, write_beh_tsv

_C_WIDTH = 2.0 * float(special.ndtri(0.95))  # psignifit: width spans S = 0.05 .. 0.95


def _default_display() -> dict:
    """The sidecar display table of the protocol schema's default display."""
    return display_record(DisplaySettings())


@dataclass(frozen=True, kw_only=True)
class SimCondition:
    """One condition of the simulated protocol.

    Attributes:
        name: condition name.
        threshold: group (geometric-mean) threshold, level units.
        layout_mode, level_variable, fixation_deg: as in a protocol's ``[[conditions]]``.
        level_min, level_max: QUEST+ range; constant stimuli use ``levels`` or 7 log-spaced
            levels over this range.
        levels: explicit constant-stimuli levels.
    """

    name: str
    threshold: float
    layout_mode: str = "acuity"
    level_variable: str = "strength"
    fixation_deg: tuple[float, float] = (0.0, 0.0)
    level_min: float = 0.1
    level_max: float = 8.0
    levels: tuple[float, ...] = ()


def _default_conditions() -> tuple[SimCondition, ...]:
    return (
        SimCondition(name="acuity_centre", threshold=1.5),
        SimCondition(name="acuity_right8", threshold=1.0, fixation_deg=(8.0, 0.0)),
    )


@dataclass(frozen=True, kw_only=True)
class SimulationSpec:
    """A simulated study.

    Attributes:
        participants: number of (parametric) participants, labelled 01, 02, ...
        conditions: the conditions.
        trials_per_condition: responded trials per participant and condition.
        procedure: ``constant`` (constant stimuli) or ``questplus`` (the study's QUEST+).
        width_log10: psychometric width (5-95 % span) on log10 level.
        lapse: lapse rate.
        between_sd_log10: SD of participants' log10 thresholds around the group's.
        fixation_break_rate: share of presentations aborted by a fixation break (re-presented).
        deadline_miss_rate: share of trials whose generation missed the deadline (cached image).
        rt_median_s: median response time.
        calibration_error_deg: mean validation error of the calibrations.
        perceptual_participants: extra sessions by a model observer (observer=perceptual) whose
            thresholds are ``perceptual_threshold_factor`` times the group's.
        perceptual_threshold_factor: see above.
        incomplete: participant labels whose session stops after 60 % of its trials.
        overrides: participant label -> field overrides (``fixation_break_rate``,
            ``calibration_error_deg``, ``lapse``, ``deadline_miss_rate``) for QC scenarios.
        protocol_name, task: labels.
        display: the display table of the sidecar.
        image_size_px, patch_px: stimulus geometry.
        n_levels, n_thresholds, widths_log10, lapse_rates: QUEST+ settings (schema defaults).
        seed: everything random derives from it.
    """

    participants: int = 6
    conditions: tuple[SimCondition, ...] = field(default_factory=_default_conditions)
    trials_per_condition: int = 100
    procedure: Literal["constant", "questplus"] = "constant"
    width_log10: float = 0.6
    lapse: float = 0.02
    between_sd_log10: float = 0.1
    fixation_break_rate: float = 0.04
    deadline_miss_rate: float = 0.02
    rt_median_s: float = 0.7
    calibration_error_deg: float = 0.4
    perceptual_participants: int = 0
    perceptual_threshold_factor: float = 1.3
    incomplete: tuple[str, ...] = ()
    overrides: dict[str, dict] = field(default_factory=dict)
    protocol_name: str = "sim_2afc"
    task: str = "fovea2afc"
    display: dict = field(default_factory=_default_display)
    image_size_px: tuple[int, int] = (1024, 1024)
    patch_px: int = 16
    n_levels: int = 25
    n_thresholds: int = 25
    widths_log10: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)
    lapse_rates: tuple[float, ...] = (0.0, 0.02, 0.05)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.procedure not in ("constant", "questplus"):
            raise FoveaError(f"procedure must be constant or questplus, got {self.procedure!r}")
        if self.participants < 0 or self.trials_per_condition < 1:
            raise FoveaError("participants must be >= 0 and trials_per_condition >= 1")
        names = [c.name for c in self.conditions]
        if not names or len(set(names)) != len(names):
            raise FoveaError(f"conditions must be a non-empty list of unique names, got {names}")


def p_correct_parametric(level, *, threshold: float, width_log10: float, lapse: float):
    """The study's ParametricObserver: 0.5 + (0.5 - lapse) * Phi(c (log10 l - log10 m) / width)."""
    level = np.asarray(level, dtype=float)
    with np.errstate(divide="ignore"):
        z = _C_WIDTH * (np.log10(level) - math.log10(threshold)) / width_log10
    return 0.5 + (0.5 - lapse) * special.ndtr(z)


def constant_levels(cond: SimCondition) -> np.ndarray:
    if cond.levels:
        return np.asarray(cond.levels, dtype=float)
    return np.geomspace(cond.level_min, cond.level_max, 7)


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
    token_cache = _TokenCounter(spec)
    sha = hashlib.sha256(json.dumps(_protocol_dict(spec), sort_keys=True).encode()).hexdigest()
    for i, (label, observer) in enumerate(people):
        rng = _rng(spec.seed, 3, i)
        _write_session(
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
                    _C_WIDTH * (np.log10(lv) - np.log10(thr)) / spec.width_log10
                )
                c = rng.random(len(people)) < p
                qp.update(indices=idx, correct=c)
                levels[:, t], correct[:, t] = lv, c
            for i, (label, _) in enumerate(people):
                out[label][cond.name] = (levels[i], correct[i])
    return out


class _TokenCounter:
    """Token counts of the generator's layout per (condition, level), cached."""

    def __init__(self, spec: SimulationSpec) -> None:
        from analysis.tokens import layout_tokens

        self._fn = layout_tokens
        self._spec = spec
        self._cache: dict[tuple[str, float], tuple[int, int]] = {}

    def __call__(self, cond: SimCondition, level: float) -> tuple[int, int]:
        key = (cond.name, float(level))
        if key not in self._cache:
            s = self._spec
            tokens, full = self._fn(
                condition=_condition_table(cond),
                level=float(level),
                display=s.display,
                image_size_px=s.image_size_px,
                patch_px=s.patch_px,
                gaze_deg=cond.fixation_deg,
            )
            self._cache[key] = (tokens, full)
        return self._cache[key]


def _condition_table(cond: SimCondition) -> dict:
    """The sidecar's condition table (``protocol.levels.condition_summary``), schema defaults for
    what a ``SimCondition`` does not set; not validated (simulations may go beyond a protocol)."""
    condition = Condition.model_construct(
        name=cond.name,
        layout_mode=cond.layout_mode,
        fixation_deg=tuple(cond.fixation_deg),
        level_variable=cond.level_variable,
        level_min=cond.level_min,
        level_max=cond.level_max,
        levels=list(cond.levels),
    )
    return condition.model_dump(mode="json", warnings=False)


def _protocol_dict(spec: SimulationSpec) -> dict:
    return {
        "name": spec.protocol_name,
        "task": spec.task,
        "description": "simulated by analysis.simulate_data",
        "display": spec.display,
        "stimulus": {
            "image_width_px": spec.image_size_px[0],
            "image_height_px": spec.image_size_px[1],
        },
        "conditions": [_condition_table(c) for c in spec.conditions],
        "procedure": {
            "method": spec.procedure,
            "trials_per_condition": spec.trials_per_condition,
            "questplus": {
                "n_levels": spec.n_levels,
                "n_thresholds": spec.n_thresholds,
                "widths_log10": list(spec.widths_log10),
                "lapse_rates": list(spec.lapse_rates),
            },
        },
        "simulation": {"width": spec.width_log10, "log_scale": True, "lapse": spec.lapse},
    }


def _write_session(out, spec, label, observer, thresholds, sequences, rng, tokens, sha) -> None:
    overrides = spec.overrides.get(label, {})
    fb_rate = float(overrides.get("fixation_break_rate", spec.fixation_break_rate))
    dl_rate = float(overrides.get("deadline_miss_rate", spec.deadline_miss_rate))
    cal_err = float(overrides.get("calibration_error_deg", spec.calibration_error_deg))
    lapse = float(overrides.get("lapse", spec.lapse))
    # Interleave the conditions' tracks in a random order (the study's scheduler does too).
    order = np.concatenate(
        [np.full(spec.trials_per_condition, i) for i in range(len(spec.conditions))]
    )
    order = order[rng.permutation(order.size)]
    if label in spec.incomplete:
        order = order[: int(0.6 * order.size)]
    position = [0] * len(spec.conditions)
    rows = []
    t_s = 0.0
    trial = 0
    for ci in order:
        cond = spec.conditions[ci]
        levels, correct = sequences[cond.name]
        j = position[ci]
        position[ci] += 1
        level = float(levels[j])
        n_tokens, n_full = tokens(cond, level)
        p = float(
            p_correct_parametric(
                level, threshold=thresholds[cond.name], width_log10=spec.width_log10, lapse=lapse
            )
        )
        attempt = 1
        while True:
            trial += 1
            t_s += 2.5 + rng.exponential(0.5)
            interval = int(rng.integers(1, 3))
            broke = rng.random() < fb_rate
            missed = (not broke) and rng.random() < dl_rate
            latency = float(rng.lognormal(math.log(0.25), 0.3)) + (2.0 if missed else 0.0)
            gx = cond.fixation_deg[0] + rng.normal(0, 0.25)
            gy = cond.fixation_deg[1] + rng.normal(0, 0.25)
            stim_seed = int(rng.integers(1000, 2000))
            row = new_row(**{
                "participant": label, "session": "1", "trial": trial, "condition": cond.name,
                "level": level, "interval_foveated": interval, "fixation_break": broke,
                "gaze_x_deg": float(gx), "gaze_y_deg": float(gy), "seed": stim_seed,
                "tokens": n_tokens, "gen_latency_s": latency, "onset_s": t_s, "tokens_full": n_full,
                "deadline_missed": missed, "cached_stimulus": missed,
                "dropped_frames": int(rng.poisson(0.05)), "fixation_x_deg": float(cond.fixation_deg[0]),
                "fixation_y_deg": float(cond.fixation_deg[1]), "observer": observer,
                "p_correct_model": p, "track": cond.name, "attempt": attempt,
                "level_variable": cond.level_variable, "conditioning": int(rng.integers(0, 10)),
                "token_ratio": n_tokens / n_full, "twin_latency_s": 0.0,
                "gaze_to_flip_median_s": float(rng.uniform(0.0003, 0.0008)),
                "scene": _scene_hash(stim_seed), "reference": "generated",
            })  # fmt: skip
            if broke:
                row.update(response=None, correct=None, rt_s=None, abort_reason="fixation_break")
                rows.append(row)
                attempt += 1
                continue
            ok = bool(correct[j])
            row.update(
                response=interval if ok else 3 - interval,
                correct=ok,
                rt_s=float(spec.rt_median_s * math.exp(0.3 * rng.standard_normal())),
                abort_reason=None,
            )
            rows.append(row)
            break
    stem = f"sub-{label}_ses-1_task-{spec.task}"
    beh = out / f"sub-{label}" / "ses-1" / "beh"
    beh.mkdir(parents=True, exist_ok=True)
    write_beh_tsv(beh / f"{stem}_beh.tsv", rows)
    sidecar = beh_sidecar(
        task=spec.task,
        task_description="simulated",
        protocol_name=spec.protocol_name,
        protocol_file=None,
        protocol_sha256=sha,
        protocol=_protocol_dict(spec),
        conditions={c.name: _condition_table(c) for c in spec.conditions},
        display=spec.display,
        image_size_px=spec.image_size_px,
        patch_px=spec.patch_px,
        scenes={"spec": "pool", "source": "simulated (no images were made)", "factor": 4},
        reference="generated",
        observer=observer,
        tracker="sim",
        seed=int(spec.seed),
        started_utc="2026-01-01T00:00:00Z",
        software_version="simulated",
        completed=label not in spec.incomplete,
        calibration=[
            {"time_s": 0.0, "avg_error_deg": cal_err, "max_error_deg": 2.0 * cal_err},
            {"time_s": t_s / 2, "avg_error_deg": cal_err * 1.1, "max_error_deg": 2.2 * cal_err},
        ],
    )
    sidecar["true_thresholds"] = dict(thresholds)
    sidecar["simulation_spec"] = _jsonable(asdict(spec))
    (beh / f"{stem}_beh.json").write_text(json.dumps(sidecar, indent=1) + "\n", encoding="utf-8")


def _scene_hash(seed: int) -> str:
    """A stand-in for the sha256 of seed ``seed``'s scene (one scene per seed, as in a session)."""
    return hashlib.sha256(f"simulated scene {seed}".encode()).hexdigest()


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.simulate_data", description=__doc__.split("\n")[0]
    )
    parser.add_argument("out", help="data directory to create")
    parser.add_argument("--participants", type=int, default=8)
    parser.add_argument("--trials", type=int, default=120, help="responded trials per condition")
    parser.add_argument("--procedure", choices=("constant", "questplus"), default="constant")
    parser.add_argument("--perceptual", type=int, default=0, help="model-observer sessions to add")
    parser.add_argument("--seed", type=int, default=0)
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
