"""Storage: the Store ABC, the SQLite store (WAL), an in-memory store, the shared cache."""

from __future__ import annotations

from hwnas.storage.base import MemoryStore, Store
from hwnas.storage.cache import EvaluationCache
from hwnas.storage.sqlite import SQLiteStore

__all__ = ["EvaluationCache", "MemoryStore", "SQLiteStore", "Store"]
