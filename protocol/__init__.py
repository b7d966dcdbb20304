"""What the study, the stimulus sets and the analysis agree on.

- the protocol: its TOML schema (``schema`` with ``stimulus_settings``, ``run_settings``,
  ``tracker_settings``), loading and validation (``load``), the scenes it uses (``scenes``),
  what a level means for its conditions (``levels``);
- the protocol's stimulus geometry and its one record format (``geometry``);
- the session data contract: ``beh.tsv`` and its sidecar (``session_data``).

Imports only ``generator``; ``stimuli``, ``study`` and ``analysis`` import it.
"""

from protocol.load import LoadedProtocol, load_protocol, validate_protocol
from protocol.schema import Condition, Protocol
from protocol.tracker_settings import TrackerSettings

__all__ = [
    "Condition",
    "LoadedProtocol",
    "Protocol",
    "TrackerSettings",
    "load_protocol",
    "validate_protocol",
]
