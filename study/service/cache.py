"""The generation services' caches: a small LRU map, and the twin cache.

Full-resolution twins do not depend on gaze, so a service keeps them by (seed, conditioning)
(``TwinCache``): finished ones in an LRU of the protocol's ``[generation] twin_cache_size``, and
the request generating one, so that a second request for the same twin waits on it instead of
generating it twice. The trial keeps no twins of its own.
"""

from __future__ import annotations

from collections import OrderedDict


class LruCache:
    """A small least-recently-used map (twins, scenes, deadline-miss fallbacks)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict = OrderedDict()

    def get(self, key):
        if key not in self._data:
            return None
        self._data.move_to_end(key)
        return self._data[key]

    def pop(self, key):
        """Remove ``key``; its value, or None."""
        return self._data.pop(key, None)

    def put(self, key, value) -> None:
        if self.capacity <= 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


def twin_key(request) -> tuple[int, int | str]:
    """The cache key of a ``full`` request: (seed, conditioning)."""
    return (int(request.seed), request.conditioning)


class TwinCache:
    """Finished twins (``GenerationResult``, LRU) and the requests generating twins.

    Not thread-safe: the service calls it under its own lock.

    Args:
        capacity: finished twins kept (0: none; requests in flight are always tracked).
    """

    def __init__(self, capacity: int) -> None:
        self._done = LruCache(capacity)
        self._pending: dict[tuple, object] = {}

    def get(self, key: tuple):
        """The finished twin, or None."""
        return self._done.get(key)

    def pending(self, key: tuple):
        """What generates the twin now (the service's job or ticket), or None."""
        return self._pending.get(key)

    def start(self, key: tuple, work) -> None:
        """``work`` (a job or ticket) now generates the twin of ``key``."""
        self._pending[key] = work

    def finish(self, key: tuple, result) -> None:
        """The twin of ``key`` is ready: cache it; nothing generates it any more."""
        self._done.put(key, result)
        self._pending.pop(key, None)

    def drop(self, key: tuple, work) -> None:
        """``work`` stopped without a twin (failed, cancelled): forget it if it is the one."""
        if self._pending.get(key) is work:
            del self._pending[key]

    def clear_pending(self) -> None:
        self._pending.clear()

    def __len__(self) -> int:
        """Finished twins held."""
        return len(self._done)
