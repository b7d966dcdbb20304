"""The model configs' round trip through a weight file's JSON metadata."""

from __future__ import annotations

import dataclasses


class ConfigRecord:
    """Mixin for the model config dataclasses: :meth:`as_dict` for the metadata and
    :meth:`from_dict` back, ignoring keys this version does not know (weights written by a newer
    kit still load) and turning JSON lists back into tuples for ``tuple`` fields."""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in fields}
        for name, value in known.items():
            if fields[name].startswith("tuple") and isinstance(value, list):
                known[name] = tuple(value)
        return cls(**known)
