"""A generator process with injected faults, for ``tests/study/test_service_faults.py``.

``worker_main`` is the real ``study.service.worker.worker_main`` with ``TrialImages.make``
wrapped in the generator process: a request with seed ``OOM_ONCE_SEED`` raises ``RuntimeError``
the first time (a marker file, named by the environment variable ``MARKER_ENV``, remembers it
across restarts), one with seed ``OOM_SEED`` always does, and one with seed ``REFUSED_SEED``
raises a ``FoveaError``. A process that finds the file named by ``START_FAIL_ENV`` removes it
and exits before it is ready (it dies while starting). Tests make the service spawn it by
replacing ``study.service.child.worker_main``; the process imports this module by name
(spawn)."""

from __future__ import annotations

import os
from pathlib import Path

OOM_ONCE_SEED = 9001
OOM_SEED = 9002
REFUSED_SEED = 9003
MARKER_ENV = "FOVEA_TEST_OOM_MARKER"
START_FAIL_ENV = "FOVEA_TEST_START_FAIL_MARKER"


def worker_main(config, conn, heartbeat, progress, abort_job) -> None:
    start_fail = os.environ.get(START_FAIL_ENV)
    if start_fail and Path(start_fail).exists():
        Path(start_fail).unlink()
        os._exit(7)
    from generator.errors import FoveaError
    from study.service import worker
    from study.service.images import TrialImages

    make = TrialImages.make

    def faulty(self, request, **kw):
        if request.seed == OOM_ONCE_SEED:
            marker = Path(os.environ[MARKER_ENV])
            if not marker.exists():
                marker.touch()
                raise RuntimeError("CUDA out of memory (injected, once)")
        if request.seed == OOM_SEED:
            raise RuntimeError("CUDA out of memory (injected)")
        if request.seed == REFUSED_SEED:
            raise FoveaError("the gaze lies outside the image (injected)")
        return make(self, request, **kw)

    TrialImages.make = faulty
    worker.worker_main(config, conn, heartbeat, progress, abort_job)
