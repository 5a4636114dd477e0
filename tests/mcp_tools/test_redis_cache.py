"""config/redis_cache.py: Django's Redis cache with clients shared across threads."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache

pytestmark = pytest.mark.production


def test_every_thread_uses_the_same_client_and_the_cache_still_works():
    clients = []

    def use() -> None:
        clients.append(cache._cache.get_client(write=True))
        cache.set(f"shared-{threading.get_ident()}", 1, 30)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in clients}) == 1
    assert cache.add("counter", 0, 30) is True and cache.add("counter", 5, 30) is False
    assert cache.incr("counter") == 1
    cache.set_many({"a": {"x": 1}, "b": [1, 2]}, 30)
    assert cache.get_many(["a", "b", "missing"]) == {"a": {"x": 1}, "b": [1, 2]}
    cache.delete("a")
    assert cache.get("a") is None and cache.get("missing", "default") == "default"
