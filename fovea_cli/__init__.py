"""The ``fovea`` command line: the entry point, the subcommand registry and ``fovea demo``.

Above every other package (nothing imports it): each package's command module exposes
``register(subparsers, bench_subparsers)`` and imports its heavy dependencies (torch, PsychoPy,
pandas) only inside the handlers, so ``fovea --help`` stays fast.
"""
