"""Django's Redis cache backend, sharing its clients across threads.

Django's ``RedisCache`` lives per thread (``django.core.cache.caches``) and
builds a new ``redis.Redis`` for every operation. redis-py 8's constructor
fills a table of response callbacks each time, CPU spent on every cache call
(the profile is in docs/benchmarks.md).
And each thread opened connections of its own: a Celery worker running
hundreds of executions in threads held hundreds of pools.

Here one ``RedisCacheClient`` per configuration serves every thread of the
process, with one connection pool and one ``redis.Redis`` per server: both are
thread-safe, and redis-py resets its pools in a forked child by itself.
Behaviour is otherwise Django's own (same serializer, keys and options)::

    CACHES = {"default": {"BACKEND": "config.redis_cache.SharedRedisCache", "LOCATION": "redis://..."}}
"""

from __future__ import annotations

import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class SharedRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}
        self._lock = threading.Lock()

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            with self._lock:
                client = self._clients.get(index)
                if client is None:
                    client = self._client(connection_pool=self._get_connection_pool(write))
                    self._clients[index] = client
        return client


_shared: dict[tuple, SharedRedisCacheClient] = {}
_shared_lock = threading.Lock()


class SharedRedisCache(RedisCache):
    @property
    def _cache(self) -> SharedRedisCacheClient:
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        client = _shared.get(key)
        if client is None:
            with _shared_lock:
                client = _shared.setdefault(key, SharedRedisCacheClient(self._servers, **self._options))
        return client
