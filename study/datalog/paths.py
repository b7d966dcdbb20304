"""BIDS-style session paths (docs/data_format.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from generator.errors import FoveaError

_LABEL = re.compile(r"^[A-Za-z0-9]+$")
#: BEP020's recording label of the (one) recorded eye.
RECORDING_LABEL = "eye1"


def check_label(value: str, *, what: str) -> str:
    """BIDS labels are alphanumeric (no ``-``/``_``, which separate entities)."""
    if not _LABEL.match(value):
        raise FoveaError(f"{what} label {value!r} must be letters and digits only (BIDS), e.g. 01")
    return value


@dataclass(frozen=True)
class SessionPaths:
    """Where one session's files live.

    Attributes:
        data_dir: the data root (``DATA``).
        participant: participant label without ``sub-``.
        session: session label without ``ses-``.
        task: task label.
    """

    data_dir: Path
    participant: str
    session: str
    task: str

    def __post_init__(self) -> None:
        check_label(self.participant, what="participant")
        check_label(self.session, what="session")
        check_label(self.task, what="task")

    @property
    def session_dir(self) -> Path:
        return self.data_dir / f"sub-{self.participant}" / f"ses-{self.session}"

    @property
    def beh_dir(self) -> Path:
        return self.session_dir / "beh"

    @property
    def sourcedata_dir(self) -> Path:
        """Raw files outside BIDS: ``DATA/sourcedata/sub-<p>/ses-<s>`` (EDFs, shown images)."""
        return self.data_dir / "sourcedata" / f"sub-{self.participant}" / f"ses-{self.session}"

    @property
    def eyetrack_dir(self) -> Path:
        """The EDF copies (``sourcedata/.../eyetrack``); Data Viewer finds the images relative
        to it (``images/``)."""
        return self.sourcedata_dir / "eyetrack"

    @property
    def images_dir(self) -> Path:
        """The images shown per trial (PNG), beside the EDFs: ``eyetrack/images``."""
        return self.eyetrack_dir / "images"

    @property
    def lock_file(self) -> Path:
        """Held while a run of the session is going (``generator.process_lock``); outside BIDS."""
        return self.sourcedata_dir / "session.lock"

    @property
    def stem(self) -> str:
        return f"sub-{self.participant}_ses-{self.session}_task-{self.task}"

    @property
    def beh_tsv(self) -> Path:
        return self.beh_dir / f"{self.stem}_beh.tsv"

    @property
    def beh_json(self) -> Path:
        return self.beh_dir / f"{self.stem}_beh.json"

    @property
    def timing_json(self) -> Path:
        return self.beh_dir / f"{self.stem}_timing.json"

    @property
    def physio_tsv_gz(self) -> Path:
        """BIDS eye-tracking (BEP020): ``beh/<stem>_recording-eye1_physio.tsv.gz``."""
        return self.beh_dir / f"{self.stem}_recording-{RECORDING_LABEL}_physio.tsv.gz"

    @property
    def physio_json(self) -> Path:
        return self.beh_dir / f"{self.stem}_recording-{RECORDING_LABEL}_physio.json"

    @property
    def events_tsv(self) -> Path:
        """Stimulus onsets (BIDS events; its sidecar holds ``StimulusPresentation``)."""
        return self.beh_dir / f"{self.stem}_events.tsv"

    @property
    def events_json(self) -> Path:
        return self.beh_dir / f"{self.stem}_events.json"

    def exists(self) -> bool:
        """True when anything of this session is on disk."""
        return self.beh_tsv.exists() or self.beh_json.exists()
