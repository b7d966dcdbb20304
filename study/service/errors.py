"""Errors of the generation service; all are ``FoveaError`` so the CLI prints them as one line.

The study catches ``GenerationError`` around ``ticket.result()`` and re-queues the trial when
``retryable`` is true (a crashed or hung generator process, restarted by the service).
"""

from __future__ import annotations

from generator.errors import FoveaError


class GenerationError(FoveaError):
    """A request produced no image.

    Attributes:
        retryable: re-queuing the trial can succeed (the service goes on).
    """

    retryable: bool = False


class GeneratorCrashed(GenerationError):
    """The generator process died, hung or raised something other than a ``FoveaError`` (a CUDA
    out-of-memory...) during the request; the service restarts it."""

    retryable = True


class GenerationCancelled(GenerationError):
    """The request was cancelled (``ticket.cancel()``, a missed speculation, or shutdown)."""

    retryable = True


class GenerationFailed(GenerationError):
    """The generator refused the request (a ``FoveaError``: bad gaze, bad conditioning...), or
    the thread service's generator raised; the message is the generator's."""


class ServiceUnavailable(GenerationError):
    """The service is closed, failed to start, or gave up restarting the generator."""
