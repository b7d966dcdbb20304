"""Experiment protocols: the TOML schema, loading and validation."""

from study.protocol.load import LoadedProtocol, load_protocol, validate_protocol
from study.protocol.schema import Condition, Protocol
from study.protocol.tracker_settings import TrackerSettings

__all__ = [
    "Condition",
    "LoadedProtocol",
    "Protocol",
    "TrackerSettings",
    "load_protocol",
    "validate_protocol",
]
