"""``eyelink-emulated``: the EyeLink tracker's own code against the pylink emulator, with the
simulated participant as the eye.

Everything ``EyeLinkTracker`` does (commands, EDF on the Host, calibration acceptance, drift
checks, recording restarts, sample freshness, the terminate sequence) runs unchanged; only
``pylink`` is the emulator (``study.trackers.pylink_emulator``) and the participant of
``study.trackers.sim`` moves the eye. The emulated Host PC keeps its files in ``host_dir``
(default: ``<session_dir>/.eyelink_host``), so a resumed session finds the earlier runs' files.
"""

from __future__ import annotations

from pathlib import Path

from generator.geometry import DisplayGeometry
from study.trackers.emulated_host import EmulatedHost, FaultScript
from study.trackers.eyelink import EyeLinkTracker
from study.trackers.pylink_emulator import EmulatedEyeLink, make_pylink_module
from study.trackers.sim import SimulatedTracker

HOST_DIR_NAME = ".eyelink_host"


class EmulatedEyeLinkTracker(EyeLinkTracker):
    """An EyeLink tracker wired to the emulator.

    Args:
        settings: the protocol's ``TrackerSettings`` (the participant uses the ``sim_*`` fields).
        seed: seeds the participant and the emulated Host's default results.
        clock: session clock (seconds); a simulated clock is advanced by ``pumpDelay``.
        display: display geometry (px <-> deg).
        faults: what goes wrong (``FaultScript``); None: ``$FOVEA_EYELINK_FAULTS`` (JSON) or a
            clean run.
        host_dir: the emulated Host PC's folder; None: ``<session_dir>/.eyelink_host``.
        host_sampling_rate_hz: the Host's rate before the tracker sets one.
        break_timing: the participant's fixation-break timing (``study.trackers.sim.break_timing``).
        **options: ``EyeLinkTracker`` options (limits, refresh_hz, attempts, ...).
    """

    name = "eyelink-emulated"

    def __init__(
        self,
        *,
        settings,
        seed: int,
        clock,
        display: DisplayGeometry | None = None,
        faults: FaultScript | None = None,
        host_dir: Path | None = None,
        host_sampling_rate_hz: float = 500.0,
        break_timing: dict | None = None,
        **options,
    ) -> None:
        super().__init__(
            settings=settings,
            clock=clock,
            display=display,
            pylink_module=make_pylink_module(self._emulate, clock=clock),
            **options,
        )
        self.seed = int(seed)
        self.participant = SimulatedTracker(
            settings=settings, seed=seed, clock=clock, **(break_timing or {})
        )
        self.faults = faults if faults is not None else FaultScript.from_environment()
        self.host_dir = Path(host_dir) if host_dir is not None else None
        self.host_sampling_rate_hz = float(host_sampling_rate_hz)
        self.host: EmulatedHost | None = None
        self.emulator: EmulatedEyeLink | None = None

    def _emulate(self, address: str | None) -> EmulatedEyeLink:
        if address is None:
            return EmulatedEyeLink(None, clock=self.clock)
        if self.host is None:
            directory = self.host_dir or Path(self.session_dir) / HOST_DIR_NAME
            self.host = EmulatedHost(directory, sampling_rate_hz=self.host_sampling_rate_hz)
        self.emulator = EmulatedEyeLink(
            address,
            host=self.host,
            clock=self.clock,
            gaze=self.participant.gaze_at,
            mapper=self.mapper,
            faults=self.faults,
            seed=self.seed,
        )
        return self.emulator

    def _open_graphics(self) -> None:
        # The emulated Host runs setups without a calibration display.
        pass

    # The participant hears what the runner says, as the simulated tracker does.
    def set_target(self, *, x_deg: float, y_deg: float) -> None:
        self.participant.set_target(x_deg=x_deg, y_deg=y_deg)

    def message(self, text: str) -> None:
        super().message(text)
        self.participant.message(text)

    def trial_start(self, *, trial: int, variables: dict) -> None:
        self.participant.trial_start(trial=trial, variables=variables)
        super().trial_start(trial=trial, variables=variables)

    def trial_end(self, *, result: str, variables: dict | None = None) -> None:
        self.participant.trial_end(result=result)
        super().trial_end(result=result, variables=variables)

    def drift_check(self, *, x_deg: float, y_deg: float):
        self.participant.set_target(x_deg=x_deg, y_deg=y_deg)  # the participant sees the target
        return super().drift_check(x_deg=x_deg, y_deg=y_deg)
