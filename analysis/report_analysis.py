"""What one run of the report is: its settings (``ReportConfig``) and its record (``Analysis``).

The report builds one ``Analysis`` in stages (``analysis.report_stages``: load -> QC -> fits ->
group -> overlay -> tokens; ``analysis.report_files``: figures, tables, summary), and the HTML
renderer (``analysis.report_html.render``) reads that one object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.errors import FoveaError

if TYPE_CHECKING:
    import pandas as pd

    from analysis.data import Dataset
    from analysis.design import Design
    from analysis.fits import FitSettings, PsychometricFit
    from analysis.glmm import LogisticMixedResult
    from analysis.group import MixedModelResult
    from analysis.qc import QCResult, QCRules


@dataclass(frozen=True, kw_only=True)
class ReportConfig:
    """Everything the report's numbers depend on (recorded in summary.json).

    Attributes:
        fit: psychometric fit settings (default ``FitSettings()``).
        qc: exclusion rules (default ``QCRules()``).
        operating_levels: condition name -> level for the indistinguishability statement;
            conditions not named use ``operating_level`` or the default for their level variable
            (strength 1.0, radius_shrink 0.67 = the paper's r = 0.33, periphery_factor 2).
        operating_level: one level for every condition (overrides the defaults).
        equivalence_margin: proportion correct above 0.5 that still counts as indistinguishable.
        alpha: level of each one-sided test.
        protocol: analyse only this protocol (name or sha256 prefix).
        progress: show progress bars on stderr.
        workers: processes for the per-participant fits and figures (default: the usable CPUs,
            at most 4); results do not depend on it.
        title: report title (default: from the protocol name).
        stimuli: show each condition's example pair at the group threshold (regenerated with
            the sessions' model when the sessions saved no images; cached beside the figures).
        stimulus_device: the torch device the example images are regenerated on (``cpu``;
            ``cuda`` where the sessions ran a large FLUX model, which is slow on a CPU).
    """

    fit: FitSettings | None = None
    qc: QCRules | None = None
    operating_levels: dict[str, float] = field(default_factory=dict)
    operating_level: float | None = None
    equivalence_margin: float = 0.05
    alpha: float = 0.05
    protocol: str | None = None
    progress: bool = True
    workers: int | None = None
    title: str | None = None
    stimuli: bool = True
    stimulus_device: str = "cpu"

    def __post_init__(self) -> None:
        from analysis.fits import FitSettings
        from analysis.qc import QCRules

        if self.fit is None:
            object.__setattr__(self, "fit", FitSettings())
        if self.qc is None:
            object.__setattr__(self, "qc", QCRules())
        if not 0 < self.equivalence_margin < 0.5:
            raise FoveaError(
                f"equivalence margin must lie in (0, 0.5), got {self.equivalence_margin!r}"
            )
        if not 0 < self.alpha < 0.5:
            raise FoveaError(f"alpha must lie in (0, 0.5), got {self.alpha!r}")
        for name, level in {**self.operating_levels, "*": self.operating_level}.items():
            if level is not None and not (math.isfinite(level) and level >= 0):
                raise FoveaError(
                    f"operating level for {name} must be a non-negative number, got {level!r}"
                )


@dataclass
class Analysis:
    """One analysis of one data directory, filled stage by stage (None until its stage ran).

    Attributes:
        config: the settings.
        data_root: the data directory read.
        dataset, design: what was read and what the sidecars say (stage ``load``).
        warnings: notes for the reader, in the order found (every stage may add one).
        qc: the QC result (stage ``apply_qc``).
        conditions: condition names in report order (the design's order, then any others).
        excluded: participants excluded by QC.
        human, perceptual: trials usable for fits (trial rules passed; participant exclusions
            still included), of the participants and of the perceptual observer (stage ``fits``).
        fits: every participant x condition fit, excluded participants too.
        threshold_rows: the pinned ``thresholds.csv`` table (included participants).
        fit_details: every fit's detail row plus ``included``.
        pngs: figure name -> PNG bytes (participant figures from stage ``fits``, the others
            from ``draw_figures``).
        analysed_human: human trials that are analysed (trial and participant rules passed).
        group, lmm, pairs, glmm, equiv: group statistics (stage ``group_statistics``).
        models_left_out: conditions left out of the models that compare conditions (lmm, glmm)
            because their level variable is not the reference condition's.
        overlay_fits: (human, model) pooled fits per condition for the overlay figure, or None
            without perceptual-observer sessions; overlay_table: its table (empty without).
        savings, tested_tokens: token savings at threshold and tokens per tested level;
            token_curves: condition -> (level grid, token ratio) for the token figure.
        stimulus_examples: one ``analysis.report_stimuli.StimulusExample`` per condition (empty
            when ``config.stimuli`` is off).
        sessions_table: one row per session or skipped file.
        table_names: names of the ``tables/*.csv`` written.
        timings_s: stage name -> seconds.
        seconds: seconds from start to the written tables.
        summary: the ``summary.json`` content.
    """

    config: ReportConfig
    data_root: Path
    dataset: Dataset
    design: Design
    warnings: list[str] = field(default_factory=list)
    qc: QCResult | None = None
    conditions: list[str] = field(default_factory=list)
    excluded: set[str] = field(default_factory=set)
    human: pd.DataFrame | None = None
    perceptual: pd.DataFrame | None = None
    fits: list[PsychometricFit] = field(default_factory=list)
    threshold_rows: pd.DataFrame | None = None
    fit_details: pd.DataFrame | None = None
    pngs: dict[str, bytes] = field(default_factory=dict)
    analysed_human: pd.DataFrame | None = None
    group: pd.DataFrame | None = None
    lmm: MixedModelResult | None = None
    pairs: pd.DataFrame | None = None
    glmm: LogisticMixedResult | None = None
    models_left_out: list[str] = field(default_factory=list)
    equiv: pd.DataFrame | None = None
    overlay_fits: tuple[dict, dict] | None = None
    overlay_table: pd.DataFrame | None = None
    savings: pd.DataFrame | None = None
    tested_tokens: pd.DataFrame | None = None
    token_curves: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    stimulus_examples: list[Any] = field(default_factory=list)
    sessions_table: pd.DataFrame | None = None
    table_names: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    summary: dict = field(default_factory=dict)

    @property
    def fit_settings(self) -> FitSettings:
        return self.config.fit

    @property
    def included_fits(self) -> list[PsychometricFit]:
        """The fits of participants that QC did not exclude."""
        return [f for f in self.fits if f.participant not in self.excluded]

    @property
    def ci_pct(self) -> str:
        """The fits' interval probability as text, e.g. ``95 %``."""
        return f"{100 * self.config.fit.ci_level:g} %"

    @property
    def log_axis(self) -> bool:
        """Fits and figures on log level."""
        return self.config.fit.axis == "log"
