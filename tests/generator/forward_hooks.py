"""Module forwards seen by a test, and a Ctrl-C at a chosen one: the benchmarks' interrupt tests
count the forwards of an uninterrupted run, then raise KeyboardInterrupt in the last forward of
the same run again (deterministic: no timers)."""

from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def module_forwards(*, ctrl_c_at: int | None = None):
    """Inside: every torch module forward appends to the yielded list; the ``ctrl_c_at``-th
    (1-based) raises KeyboardInterrupt."""
    calls: list[int] = []

    def hook(*_):
        calls.append(1)
        if len(calls) == ctrl_c_at:
            raise KeyboardInterrupt

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()
