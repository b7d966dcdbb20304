"""Writing one simulated session through the session data contract (``protocol.session_data``):
its trial rows, ``beh.tsv`` and ``beh.json``, as ``fovea simulate`` would."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict

import numpy as np

from analysis.simulation_spec import SimCondition, SimulationSpec, p_correct_parametric
from protocol.json_values import strict_json
from protocol.schema import Condition
from protocol.session_data import beh_sidecar, new_row, write_beh_tsv


class TokenCounter:
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
                condition=condition_table(cond),
                level=float(level),
                display=s.display,
                image_size_px=s.image_size_px,
                patch_px=s.patch_px,
                gaze_deg=cond.fixation_deg,
            )
            self._cache[key] = (tokens, full)
        return self._cache[key]


def condition_table(cond: SimCondition) -> dict:
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


def protocol_dict(spec: SimulationSpec) -> dict:
    """The simulated protocol (written to the sidecars; its sha256 identifies the study)."""
    return {
        "name": spec.protocol_name,
        "task": spec.task,
        "description": "simulated by analysis.simulate_data",
        "display": spec.display,
        "stimulus": {
            "image_width_px": spec.image_size_px[0],
            "image_height_px": spec.image_size_px[1],
        },
        "conditions": [condition_table(c) for c in spec.conditions],
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


def _session_rows(spec, label, observer, thresholds, sequences, rng, tokens):
    """The session's trial rows (fixation breaks re-presented) and its last onset, s."""
    overrides = spec.overrides.get(label, {})
    fb_rate = float(overrides.get("fixation_break_rate", spec.fixation_break_rate))
    dl_rate = float(overrides.get("deadline_miss_rate", spec.deadline_miss_rate))
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
    return rows, t_s


def write_session(out, spec, label, observer, thresholds, sequences, rng, tokens, sha) -> None:
    """Write one simulated session's ``beh.tsv`` and sidecar below ``out``.

    Args:
        out: the data directory.
        spec: the ``SimulationSpec``.
        label, observer: participant label and observer kind.
        thresholds: condition name -> the participant's true threshold.
        sequences: condition name -> (levels, correct) of the responded trials.
        rng: the session's random stream (draws in a fixed order: same seed, same bytes).
        tokens: ``TokenCounter``.
        sha: the simulated protocol's settings sha256 (``protocol.identity.settings_sha256``; it
            has no file, so it stands for the file's sha256 too).
    """
    cal_err = float(
        spec.overrides.get(label, {}).get("calibration_error_deg", spec.calibration_error_deg)
    )
    rows, t_s = _session_rows(spec, label, observer, thresholds, sequences, rng, tokens)
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
        protocol_settings_sha256=sha,
        protocol=protocol_dict(spec),
        conditions={c.name: condition_table(c) for c in spec.conditions},
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
    sidecar["simulation_spec"] = strict_json(asdict(spec))
    (beh / f"{stem}_beh.json").write_text(json.dumps(sidecar, indent=1) + "\n", encoding="utf-8")


def _scene_hash(seed: int) -> str:
    """A stand-in for the sha256 of seed ``seed``'s scene (one scene per seed, as in a session)."""
    return hashlib.sha256(f"simulated scene {seed}".encode()).hexdigest()
