"""The real-time generation service: the generator in its own process, speculative start at the
fixation target, cached twins, crash and hang recovery (issue 6).

``ProcessGenerationService`` implements ``study.generation.GenerationService``; its tickets
(``ServiceTicket``) are ``GenerationTicket`` objects with per-request timings. Errors are
``GenerationError`` subclasses (``FoveaError``); ``retryable`` ones mean "re-queue the trial".

Names load on first use: the generator process imports ``study.service.worker`` only, so that
its thread settings are in place before torch loads.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "GenerationCancelled": "study.service.errors",
    "GenerationError": "study.service.errors",
    "GenerationFailed": "study.service.errors",
    "GeneratorCrashed": "study.service.errors",
    "ServiceUnavailable": "study.service.errors",
    "ProcessGenerationService": "study.service.process",
    "gaze_distance_deg": "study.service.process",
    "ServiceTicket": "study.service.ticket",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'study.service' has no attribute {name!r}")
