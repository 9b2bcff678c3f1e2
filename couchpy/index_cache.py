"""The open indexes of each open database (views, Nouveau), keyed by signature, and the cleanup
both kinds share: forget and close the indexes no design document uses, remove their directories.

An index lives inside its database's directory, so it is closed with the database (through its
close hook): a deleted database takes its indexes with it, and one created again under the same
name starts with none open.
"""

from __future__ import annotations

import asyncio
import shutil
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


class IndexCache:
    """Per database, signature -> open index. An entry may also be an `asyncio.Future` of an
    index being opened (Nouveau opens in a thread); such an entry is not closed here."""

    def __init__(self) -> None:
        self._dbs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def of(self, db: Any) -> dict[str, Any]:
        """The cache of `db`, made (and tied to the database's close) on first use."""
        cache = self._dbs.get(db)
        if cache is None:
            cache = {}
            self._dbs[db] = cache

            def close() -> None:
                for ix in list(cache.values()):
                    _close(ix)
                cache.clear()

            db.add_close_hook(close)
        return cache

    def drop_unused(self, db: Any, live: set[str]) -> None:
        """Close and forget the open indexes whose signature is not in `live`."""
        cache = self.of(db)
        for sig in list(cache):
            if sig not in live:
                _close(cache.pop(sig))


def _close(ix: Any) -> None:
    if not isinstance(ix, asyncio.Future):
        ix.close()


def design_signatures(db: Any, signatures_of: Callable[[dict], Iterable[str]]) -> set[str]:
    """The signatures `signatures_of` finds in the live design documents of `db`; a design
    document it cannot parse uses none (it could not have built an index either)."""
    sigs: set[str] = set()
    for info in db.iter_docinfos(start="_design/", end="_design0", inclusive_end=False):
        if info.deleted:
            continue
        try:
            sigs |= set(signatures_of(db.get(info.id)))
        except Exception:
            continue
    return sigs


async def remove_unused_dirs(root: Path, live: set[str], signature_of: Callable[[str], str | None]) -> None:
    """Remove the directories under `root` whose signature (`signature_of` their name; None: not
    an index directory, kept) is not in `live`; in a thread, removing may take a while."""
    if not root.exists():
        return
    loop = asyncio.get_running_loop()
    for d in root.iterdir():
        sig = signature_of(d.name)
        if d.is_dir() and sig is not None and sig not in live:
            await loop.run_in_executor(None, shutil.rmtree, d, True)
