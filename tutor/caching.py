"""A per-process cache with a short time-to-live, for lookups every request makes (the active tracer and policy
versions, the curriculum snapshot key). Another process sees a change within `ttl` seconds; the process that
makes the change clears the cache at once.

When the value has expired, one thread reloads it and the others go on with the last value meanwhile (stale while
revalidating): a reload under load takes several milliseconds, and every request that arrived in that window used
to wait for it. A cleared cache has no last value, so after `clear` every caller waits for the fresh one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

# Every cache, so tests and activations can clear them together.
_ALL: list[TTLCache[object]] = []


class TTLCache(Generic[T]):
    def __init__(self, load: Callable[[], T], ttl: float = 1.0) -> None:
        self._load = load
        self.ttl = ttl
        self._value: T | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        _ALL.append(self)  # type: ignore[arg-type]

    def get(self) -> T:
        value = self._value
        if value is not None and time.monotonic() < self._expires:
            return value
        if value is not None and not self._lock.acquire(blocking=False):
            return value  # another thread is reloading it
        if value is None:
            self._lock.acquire()
        try:
            if self._value is None or time.monotonic() >= self._expires:
                self._value = self._load()
                self._expires = time.monotonic() + self.ttl
            return self._value
        finally:
            self._lock.release()

    def clear(self) -> None:
        with self._lock:
            self._value = None
            self._expires = 0.0


def clear_all() -> None:
    for cache in _ALL:
        cache.clear()
