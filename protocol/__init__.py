"""Experiment protocols: the TOML schema, loading and validation."""

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
