"""Per-participant work of the report (fits + figure), optionally spread over processes.

The fits of different participants are independent and each cell's bootstrap seed derives from
its labels, so results do not depend on the number of workers or the order they finish in.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from analysis.fits import FitSettings, PsychometricFit, fit_cell


@dataclass(frozen=True)
class ParticipantJob:
    """One participant's cells.

    Attributes:
        participant: label.
        cells: (condition, observer, levels, correct, track) per condition, in report order;
            the trials in the order they ran.
        excluded: excluded by QC (fitted and drawn anyway, flagged).
        truth: simulated true thresholds by condition (drawn when given).
        settings: fit settings.
        figure: also draw the participant's figures.
        tracks: also draw the levels trial by trial (adaptive procedures).
        level_domains: condition -> possible levels (``Design.level_domains``): intervals are cut
            to them.
        level_labels: condition -> axis label of its level variable (``Design.level_labels``).
    """

    participant: str
    cells: tuple[tuple[str, str, np.ndarray, np.ndarray, np.ndarray], ...]
    excluded: bool
    truth: dict | None
    settings: FitSettings
    figure: bool = True
    tracks: bool = False
    level_labels: dict | None = None
    level_domains: dict | None = None


def run_job(job: ParticipantJob) -> tuple[list[PsychometricFit], dict[str, bytes]]:
    """The participant's fits and figures (``psychometric``, ``tracks``: PNG bytes)."""
    fits = []
    for condition, observer, levels, correct, _ in job.cells:
        fit = fit_cell(
            participant=job.participant,
            condition=condition,
            observer=observer,
            levels=levels,
            correct=correct,
            settings=job.settings,
            level_domain=(job.level_domains or {}).get(condition),
        )
        if job.excluded:
            fit.flags.insert(0, "participant excluded by QC")
        fits.append(fit)
    pngs = {}
    if job.figure:
        from analysis.figures import participant_curves, participant_tracks

        title = f"Participant {job.participant}{' (excluded by QC)' if job.excluded else ''}"
        pngs["psychometric"] = participant_curves(
            fits, title=title, truth=job.truth, level_labels=job.level_labels
        )
        if job.tracks:
            sequences = [(levels, correct, track) for _, _, levels, correct, track in job.cells]
            pngs["tracks"] = participant_tracks(
                fits,
                sequences,
                title=f"{title}: levels trial by trial",
                truth=job.truth,
                level_labels=job.level_labels,
            )
    return fits, pngs


def default_workers() -> int:
    """Processes for the per-participant work: the CPUs this process may use, at most 4."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 4))


def run_jobs(
    jobs: list[ParticipantJob], *, workers: int, progress: bool
) -> list[tuple[list[PsychometricFit], dict[str, bytes]]]:
    """Run ``jobs`` (results in job order), in ``workers`` forked processes when > 1."""
    from generator.progress import progress_bar

    bar = progress_bar(
        total=len(jobs), desc="participants (fits + figure)", unit="participant", enabled=progress
    )
    results: list = [None] * len(jobs)
    # fork: workers inherit the imported modules (spawn would re-import torch etc. per worker).
    can_fork = "fork" in multiprocessing.get_all_start_methods()
    if workers <= 1 or len(jobs) <= 1 or not can_fork:
        for i, job in enumerate(jobs):
            results[i] = run_job(job)
            bar.update(1)
    else:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
            futures = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
            from concurrent.futures import as_completed

            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update(1)
    bar.close()
    return results
