"""The real-time generation services: the generator in its own process, speculative start at the
fixation target, cached twins, crash and hang recovery (issue 6); or in a worker thread.

``start_service`` (``study.service.start``) makes and starts the service a protocol asks for.
``ProcessGenerationService`` (``process``: interface and lifecycle; ``jobs``: the queue;
``child``: the generator process, its health and restarts; ``monitor``: the monitor thread;
``speculation``; ``cache``: the twin cache) and ``ThreadGenerationService`` (``thread``) implement
``study.generation.GenerationService``; the process service's tickets
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
    "gaze_distance_deg": "study.service.speculation",
    "start_service": "study.service.start",
    "ThreadGenerationService": "study.service.thread",
    "ServiceTicket": "study.service.ticket",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'study.service' has no attribute {name!r}")
