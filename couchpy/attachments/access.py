"""Per-database attachment machinery: the BlobStore of a database and the settings that apply.

A database's BlobStore is created on first use and kept as long as the Database object lives
(keyed weakly by it; compaction swaps the Database's environment underneath, which the BlobStore
follows), so the in-memory pins and upload registry live as long as the database is open.
"""

from __future__ import annotations

import functools
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from .blobstore import BlobStore
from .codec import is_compressible, parse_type_patterns

_stores: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def blobs_for(db: Any) -> BlobStore:
    with _lock:
        bs = _stores.get(db)
        if bs is None:
            bs = BlobStore(db)
            _stores[db] = bs
            # The blob store refers to its database, so the weak key alone would never let go:
            # every database whose attachments were ever touched stayed in memory after the LRU
            # closed it (its codec's zstd contexts included). Its entry goes when it closes.
            if hasattr(db, "add_close_hook"):
                db.add_close_hook(functools.partial(_forget, weakref.ref(db)))
        return bs


def _forget(ref: weakref.ref) -> None:
    with _lock:
        db = ref()
        if db is not None:
            _stores.pop(db, None)


def _config_of(db: Any):
    for owner in (db, getattr(db, "node", None)):
        cfg = getattr(owner, "config", None) if owner is not None else None
        if cfg is not None and hasattr(cfg, "get"):
            return cfg
    return None


@dataclass(frozen=True)
class AttSettings:
    max_size: int | None  # identity bytes; None = unlimited
    compressible: list[str]
    level: int

    def compress(self, content_type: str | None) -> bool:
        return self.level > 0 and is_compressible(content_type, self.compressible)


def settings_for(db: Any) -> AttSettings:
    cfg = _config_of(db)
    if cfg is None:
        return AttSettings(None, parse_type_patterns(None), 8)
    raw_max = (cfg.get("couchdb", "max_attachment_size") or "infinity").strip().lower()
    try:
        max_size = None if raw_max == "infinity" else int(raw_max)
    except ValueError:
        max_size = None
    try:
        level = int((cfg.get("attachments", "compression_level") or "8").strip())
    except ValueError:
        level = 8
    return AttSettings(max_size, parse_type_patterns(cfg.get("attachments", "compressible_types")), level)
