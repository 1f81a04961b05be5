"""In-process caches of the report server, keyed by content hashes so they never go stale.

A parsed audit document (and the page model built from it) depends only on the blob's hash
and the commit it sits in; both are immutable. The caches are bounded LRUs shared by the
server's threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from flask import Flask, current_app


class LRU:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
        value = make()  # outside the lock: two threads may both build on a cold miss
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class ReportCaches:
    def __init__(self) -> None:
        self.audit_views = LRU(32)  # (repo, commit, blob hash) -> AuditView + chart markup
        self.audit_summaries = LRU(2048)  # blob hash -> summarize(doc)
        self.json_docs = LRU(64)  # blob hash -> parsed JSON (metrics, conversion)
        self.lineage = LRU(8)  # store state -> graph


def caches(app: Flask | None = None) -> ReportCaches:
    app = app or current_app
    if "tulip_caches" not in app.extensions:
        app.extensions["tulip_caches"] = ReportCaches()
    return app.extensions["tulip_caches"]
