"""Load and validate a protocol TOML file; errors name the file, the field and the reason."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from generator.errors import FoveaError
from protocol.schema import Protocol


@dataclass(frozen=True)
class LoadedProtocol:
    """A validated protocol with where it came from.

    Attributes:
        protocol: the validated protocol.
        path: the TOML file.
        sha256: hex digest of the file's bytes (stored in the session sidecar; a resumed session
            refuses a changed protocol).
    """

    protocol: Protocol
    path: Path
    sha256: str


def load_protocol(path: str | Path) -> LoadedProtocol:
    """Read and validate ``path``.

    Raises:
        FoveaError: missing file, TOML syntax error, or invalid fields; the message names the
            file and, for each problem, the dotted field path and the reason.
    """
    path = Path(path)
    if not path.is_file():
        raise FoveaError(f"protocol file {path} does not exist (see protocols/*.toml)")
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise FoveaError(f"{path}: not valid TOML: {error}") from None
    protocol = validate_protocol(data, source=str(path), protocol_dir=path.parent)
    return LoadedProtocol(protocol=protocol, path=path, sha256=hashlib.sha256(raw).hexdigest())


def validate_protocol(data: dict, *, source: str, protocol_dir: Path | None = None) -> Protocol:
    """Validate an already-parsed protocol dict; ``source`` names it in errors; relative file
    paths in it (``[stimulus] lora``) are relative to ``protocol_dir`` (None: the working
    directory)."""
    try:
        return Protocol.model_validate(data, context={"protocol_dir": protocol_dir})
    except ValidationError as error:
        raise FoveaError(f"{source}: {format_validation_error(error, data)}") from None


def format_validation_error(error: ValidationError, data: dict) -> str:
    """One line: ``field a.b: reason (got X); field c: reason``."""
    parts = []
    for item in error.errors():
        loc = _dotted(item["loc"], data)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see the schema in protocol/schema.py)"
        elif item["type"] == "missing":
            message = "required field is missing"
        elif "input" in item and not isinstance(item["input"], dict | list):
            message = f"{message} (got {item['input']!r})"
        parts.append(f"field {loc or '<top level>'}: {message}")
    return "; ".join(parts)


def _dotted(loc: tuple, data: dict) -> str:
    """``('conditions', 1, 'level_min')`` -> ``conditions[1](name=foo).level_min``."""
    out = ""
    node = data
    for key in loc:
        if isinstance(key, int):
            name = None
            if isinstance(node, list) and key < len(node) and isinstance(node[key], dict):
                name = node[key].get("name")
            out += f"[{key}]" + (f"(name={name})" if name else "")
            node = node[key] if isinstance(node, list) and key < len(node) else None
        else:
            out += ("." if out else "") + str(key)
            node = node.get(key) if isinstance(node, dict) else None
    return out
