"""Load and validate a protocol TOML file; errors name the file, the field and the reason."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from generator.errors import FoveaError
from protocol.identity import settings_sha256
from protocol.schema import Protocol
from protocol.suggest import unknown_key_hint, value_hint

#: The protocols shipped with the kit; a bare name (``pilot_2afc``) is looked up here.
PROTOCOL_DIR = Path(__file__).resolve().parents[1] / "protocols"


def resolve_protocol(name: str) -> Path:
    """A protocol path, or a bare name found in the kit's ``protocols/`` (``PROTOCOL_DIR``)."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (PROTOCOL_DIR / name, PROTOCOL_DIR / f"{name}.toml"):
        if candidate.is_file():
            return candidate
    raise FoveaError(f"protocol {name!r} not found (give a TOML path or one of: {_shipped()})")


def _shipped() -> str:
    """The shipped protocols' names, for messages."""
    return ", ".join(sorted(p.stem for p in PROTOCOL_DIR.glob("*.toml"))) or "none"


@dataclass(frozen=True)
class LoadedProtocol:
    """A validated protocol with where it came from.

    Attributes:
        protocol: the validated protocol.
        path: the TOML file.
        sha256: hex digest of the file's bytes (provenance: stored in the session sidecar).
        settings_sha256: hex digest of its settings as written, whatever the comments, layout
            or line endings (``protocol.identity``: what a resume and the analysis compare).
    """

    protocol: Protocol
    path: Path
    sha256: str
    settings_sha256: str


def load_protocol(path: str | Path) -> LoadedProtocol:
    """Read and validate ``path``.

    Raises:
        FoveaError: missing file, TOML syntax error, or invalid fields; the message names the
            file and, for each problem, the dotted field path and the reason.
    """
    path = Path(path)
    if not path.is_file():
        raise FoveaError(
            f"protocol file {path} does not exist (the kit's protocols, in {PROTOCOL_DIR}: "
            f"{_shipped()})"
        )
    raw = path.read_bytes()
    try:
        # utf-8-sig: a byte-order mark (Windows Notepad writes one) is not TOML, but harmless.
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise FoveaError(f"{path}: not valid TOML: {error}") from None
    protocol = validate_protocol(data, source=str(path), protocol_dir=path.parent)
    return LoadedProtocol(
        protocol=protocol,
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
        settings_sha256=settings_sha256(data),
    )


def validate_protocol(data: dict, *, source: str, protocol_dir: Path | None = None) -> Protocol:
    """Validate an already-parsed protocol dict; ``source`` names it in errors; relative file
    paths in it (``[stimulus] lora``) are relative to ``protocol_dir`` (None: the working
    directory)."""
    try:
        return Protocol.model_validate(data, context={"protocol_dir": protocol_dir})
    except ValidationError as error:
        raise FoveaError(f"{source}: {format_validation_error(error, data)}") from None


def format_validation_error(error: ValidationError, data: dict) -> str:
    """One line: ``field a.b: reason (got X); field c: reason``, with what would be right: the
    key or value a typo was probably meant to be, the table a misplaced key belongs in."""
    parts = []
    for item in error.errors():
        loc = _dotted(item["loc"], data)
        message = item["msg"].removeprefix("Value error, ")
        kind = item["type"]
        got = item.get("input")
        if kind == "extra_forbidden":
            message = unknown_key_hint(Protocol, item["loc"])
        elif kind == "missing":
            message = "required field is missing"
            if item["loc"] == ("conditions",):
                message += " (a protocol has at least one [[conditions]] table)"
        elif item["loc"] == ("conditions",) and kind == "too_short":
            message = "a protocol has at least one [[conditions]] table"
        elif "input" in item and not isinstance(got, dict | list):
            message += "" if repr(got) in message else f" (got {got!r})"
            if kind == "literal_error":
                message += value_hint(got, item.get("ctx", {}).get("expected", ""))
            if isinstance(got, str) and (kind in _NUMBER_OR_BOOL or _quoted_number(got)):
                message += "; TOML numbers and true/false are written without quotes"
        parts.append(f"field {loc}: {message}" if loc else message)
    return "; ".join(parts)


# Type errors of number and boolean fields (a quoted "57" or "yes" is a string in TOML).
_NUMBER_OR_BOOL = frozenset({"float_type", "int_type", "bool_type", "float_parsing", "int_parsing"})


def _quoted_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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
