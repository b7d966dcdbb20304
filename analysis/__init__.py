"""Analysis of the study's 2AFC data: psychometric thresholds with intervals, group statistics,
quality control, token savings at threshold, and the HTML report (``analysis/report.py``).

Modules (import what you need; this package imports nothing heavy on its own, so ``fovea --help``
stays fast):

- ``data``, ``session_reader``: read ``*_beh.tsv`` + sidecars (layout and columns:
  docs/data_format.md; defined in ``protocol.session_data``).
- ``psychometric``, ``fit_ml``, ``fit_bayes``, ``fits``: psychometric functions and fits.
- ``qc``: quality-control metrics and exclusion rules.
- ``group``, ``glmm``, ``equivalence``: group thresholds, mixed models, effect sizes,
  the trial-level mixed logistic model, indistinguishability.
- ``tokens``: the generator's token counts at threshold.
- ``report`` (entry), ``report_analysis`` (settings and the ``Analysis`` record), ``report_stages``,
  ``report_files``, ``report_html``, ``report_html_results``, ``html_blocks``, ``figures``, ``jobs``: the report.
- ``simulate_data`` (with ``simulation_spec``, ``simulate_session``), ``adaptive``,
  ``validation``, ``bench``: simulated studies, the study's QUEST+ in lockstep, recovery
  validation, the report benchmark.
"""
