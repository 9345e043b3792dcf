"""What caches of pure computations share: canonical JSON keys and a bounded LRU map.

``functools.lru_cache`` keys on the call's arguments; the caches here key on a digest or the
canonical JSON of an input the caller already holds in parsed form, and must not keep that
input alive. See CONTRIBUTING.md ("Performance on the request path") for what may be cached.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

import orjson

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def canonical_json(value: Any) -> bytes:
    """Compact JSON with sorted keys: equal data, equal bytes (a cache key, or a digest's input)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError: integers beyond 64 bits and the like
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


class LruCache(Generic[K, V]):
    """At most ``size`` entries; the least recently read or written goes first. Size 0 keeps
    nothing (a cache switched off by configuration)."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("an LRU cache size is 0 or more")
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        if self._size == 0:
            return None
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        if self._size == 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
