"""The shared cache pieces: canonical JSON keys and the bounded LRU map."""

from __future__ import annotations

import threading

import pytest

from integrations.memo import LruCache, canonical_json


def test_canonical_json_ignores_key_order_and_keeps_big_integers() -> None:
    assert canonical_json({"b": [1, {"d": 2, "c": 3}], "a": "é"}) == (
        canonical_json({"a": "é", "b": [1, {"c": 3, "d": 2}]})
    )
    assert canonical_json({"a": 1}) != canonical_json({"a": 2})
    big = canonical_json({"n": 2**70, "a": 1})  # beyond orjson's 64 bits: the fallback
    assert big == b'{"a":1,"n":1180591620717411303424}'


def test_least_recently_used_goes_first() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    cache.put("a", 10)  # a rewrite refreshes too
    cache.put("d", 4)
    assert (cache.get("a"), cache.get("c"), cache.get("d")) == (10, None, 4)
    assert len(cache) == 2
    cache.clear()
    assert len(cache) == 0


def test_size_zero_keeps_nothing_and_negative_is_refused() -> None:
    cache: LruCache[str, int] = LruCache(0)
    cache.put("a", 1)
    assert cache.get("a") is None
    with pytest.raises(ValueError, match="0 or more"):
        LruCache(-1)


def test_concurrent_writers_keep_the_bound() -> None:
    cache: LruCache[int, int] = LruCache(50)

    def write(start: int) -> None:
        for i in range(start, start + 2_000):
            cache.put(i, i)
            cache.get(i - 7)

    threads = [threading.Thread(target=write, args=(n * 10_000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 50
