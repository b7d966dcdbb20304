"""The real-time generation service: the generator in its own process, speculative start at the
fixation target, cached twins, crash and hang recovery (issue 6).

``ProcessGenerationService`` implements ``study.generation.GenerationService``; its tickets
(``ServiceTicket``) are ``GenerationTicket`` objects with per-request timings. Errors are
``GenerationError`` subclasses (``FoveaError``); ``retryable`` ones mean "re-queue the trial".
"""

from study.service.errors import (
    GenerationCancelled,
    GenerationError,
    GenerationFailed,
    GeneratorCrashed,
    ServiceUnavailable,
)
from study.service.process import ProcessGenerationService, gaze_distance_deg
from study.service.ticket import ServiceTicket

__all__ = [
    "GenerationCancelled",
    "GenerationError",
    "GenerationFailed",
    "GeneratorCrashed",
    "ProcessGenerationService",
    "ServiceTicket",
    "ServiceUnavailable",
    "gaze_distance_deg",
]
