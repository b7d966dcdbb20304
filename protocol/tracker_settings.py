"""Eye-tracker settings of a protocol (the ``[tracker]`` table).

Shared contract with ``study.trackers``: ``make_tracker(kind, settings=TrackerSettings, seed=...,
clock=...)`` reads these fields. The ``sim_*`` fields script the simulated participant used by the
``"sim"`` tracker; the EyeLink fields are ignored by the dummy and simulated trackers.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrackerSettings(BaseModel):
    """Tracker configuration.

    Attributes:
        kind: tracker used by ``fovea run`` when ``--tracker`` is not given.
        sampling_rate_hz: EyeLink sampling rate (250, 500, 1000 or 2000 Hz); the simulated
            tracker generates samples at this rate too.
        eye: recorded eye.
        calibration_type: EyeLink calibration pattern.
        host_ip: EyeLink Host PC address.
        edf_prefix: up to 4 characters; each run's Host PC EDF name is the prefix, a hash of the
            participant and session and the run number (``study.trackers.edf.host_edf_name``),
            within EyeLink's 8-character limit.
        calibrate_every_n_trials: recalibrate after this many trials (0 = only at start and on
            demand with the ``c`` key).
        drift_correct_every_n_trials: drift check before every n-th trial (0 = never).
        validation_max_avg_error_deg: a calibration whose average validation error exceeds this
            is repeated (EyeLink "GOOD" is < 0.5 deg).
        validation_max_error_deg: ... and so is one whose worst point's error exceeds this.
        drift_check_max_offset_deg: a drift check measuring a larger offset forces a
            recalibration.
        max_fixation_timeouts: fixation timeouts in a row (each followed by a drift check)
            before the runner recalibrates instead.
        sim_fixation_break_prob: per-trial probability that the simulated participant breaks
            fixation during the stimulus intervals (timed to fall on a frame the trial checks,
            ``study.trackers.sim.break_timing``: the rate of breaks in the data).
        sim_blink_rate_hz: simulated blinks per second (samples invalid during a blink).
        sim_blink_duration_s: duration of a simulated blink.
        sim_blink_artifact_deg: the eyelid's artifact around a simulated blink: the gaze
            drops by up to this much in the 30 ms before the pupil is lost and the 60 ms after
            it is back, as an EyeLink reports it. Off (0) by default: a simulation sped up
            (``[simulation] speed`` > 1) reads the gaze too rarely to see the blink between
            its artifacts, so they would look like fixation breaks.
        sim_drift_deg_per_s: simulated slow drift speed during fixation.
        sim_microsaccade_rate_hz: simulated microsaccades per second.
        sim_microsaccade_amplitude_deg: simulated microsaccade amplitude.
        sim_saccade_latency_s: delay from a new fixation target to the simulated saccade.
        sim_noise_deg: standard deviation of simulated sample noise.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    kind: Literal["eyelink", "dummy", "sim"] = "eyelink"
    sampling_rate_hz: Literal[250, 500, 1000, 2000] = 1000
    eye: Literal["left", "right"] = "right"
    calibration_type: Literal["HV9", "HV5"] = "HV9"
    host_ip: str = Field(default="100.1.1.1", pattern=r"^\d{1,3}(\.\d{1,3}){3}$")
    edf_prefix: str = Field(default="fv", pattern=r"^[A-Za-z0-9_]{1,4}$")
    calibrate_every_n_trials: int = Field(default=0, ge=0)
    drift_correct_every_n_trials: int = Field(default=0, ge=0)
    validation_max_avg_error_deg: float = Field(default=1.0, gt=0, le=5)
    validation_max_error_deg: float = Field(default=2.0, gt=0, le=10)
    drift_check_max_offset_deg: float = Field(default=1.0, gt=0, le=5)
    max_fixation_timeouts: int = Field(default=3, ge=1, le=20)
    sim_fixation_break_prob: float = Field(default=0.05, ge=0, le=1)
    sim_blink_rate_hz: float = Field(default=0.2, ge=0, le=5)
    sim_blink_duration_s: float = Field(default=0.15, gt=0, le=1)
    sim_blink_artifact_deg: float = Field(default=0.0, ge=0, le=20)
    sim_drift_deg_per_s: float = Field(default=0.1, ge=0, le=5)
    sim_microsaccade_rate_hz: float = Field(default=1.0, ge=0, le=10)
    sim_microsaccade_amplitude_deg: float = Field(default=0.25, ge=0, le=2)
    sim_saccade_latency_s: float = Field(default=0.2, ge=0, le=2)
    sim_noise_deg: float = Field(default=0.03, ge=0, le=2)
