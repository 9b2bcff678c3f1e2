"""`couchpy dump URL/DB > db.jsonl` and `couchpy load URL/DB < db.jsonl`: backups over HTTP.

The file is JSON lines, the layout couchbackup writes, so either tool's files load:

    {"name": "couchpy", "version": "0.1.0", "mode": "all", "db": "recipes"}   header (an object)
    [{"_id": "a", "_rev": "2-..", "_revisions": {...}, "_attachments": {...}}, ...]   a batch
    {"since": "17-..."}                                                      resume marker

Each document revision carries its `_revisions` history and its attachments inline (base64), so
loading it with `_bulk_docs` and `new_edits: false` rebuilds the same revision tree with the same
attachment digests. `--mode all` (the default) writes every leaf revision: conflicts and deleted
branches survive a round trip; `--mode winners` writes the winning revision of each document, as
couchbackup does. Loading is idempotent (replicated writes merge into the tree), so a load cut
short is simply run again; a dump written to a file with `--output` resumes after the last complete
batch with `--resume`. Object lines other than the header and markers are ignored on load.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import couchpy
from couchpy import jsonutil
from couchpy.errors import CouchError

from .dbclient import DbClient
from .progress import Progress

BATCH = 200


async def dump(client: DbClient, out: BinaryIO, *, mode: str = "all", since: str | int = 0,
               header: bool = True, progress: Progress) -> int:
    """Write the database to `out`; returns the number of document revisions written."""
    info = await client.info()
    progress.start(total=info.get("doc_count", 0) + info.get("doc_del_count", 0), unit="docs")
    if header:
        _write(out, {"name": "couchpy", "version": couchpy.__version__, "mode": mode, "db": info.get("db_name")})
    written = 0
    while True:
        page = await client.changes(since, BATCH)
        rows = page.get("results") or []
        if not rows:
            break
        reqs = []
        for row in rows:
            revs = [c["rev"] for c in row["changes"]]
            for rev in revs if mode == "all" else revs[:1]:
                reqs.append({"id": row["id"], "rev": rev})
        docs = await client.bulk_get(reqs, attachments=True)
        if docs:
            _write(out, docs)
        since = page["last_seq"]
        _write(out, {"since": since})
        written += len(docs)
        progress.advance(len(rows))
    progress.finish(docs=written)
    return written


def resume_point(path: Path) -> str | None:
    """The `since` of the last complete batch in a dump file, cutting off anything after it (a batch
    interrupted mid-write). None when the file has no marker (start over)."""
    if not path.exists():
        return None
    keep, since = 0, None
    offset = 0
    with open(path, "rb") as f:
        for line in f:
            offset += len(line)
            if not line.endswith(b"\n"):
                break
            try:
                value = jsonutil.loads(line)
            except (ValueError, CouchError):
                break
            if isinstance(value, dict) and "since" in value:
                since, keep = value["since"], offset
    if since is not None:
        with open(path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
    return since


async def batches(lines: Iterable[bytes]) -> AsyncIterator[list[dict[str, Any]]]:
    """The document batches of a dump (ours or couchbackup's), skipping header and marker lines."""
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            value = jsonutil.loads(line)
        except (ValueError, CouchError):
            raise ValueError(f"line {number} is not JSON") from None
        if isinstance(value, list):
            docs = [d for d in value if isinstance(d, dict) and isinstance(d.get("_id"), str)]
            if docs:
                yield docs
        elif not isinstance(value, dict):
            raise ValueError(f"line {number} is neither a batch of documents nor a header")


async def load(client: DbClient, lines: Iterable[bytes], *, progress: Progress, total_bytes: int | None) -> dict:
    """Write every revision of the dump into the database (created when missing)."""
    await client.ensure_exists()
    progress.start(total=total_bytes, unit="B" if total_bytes else "docs")
    loaded = failed = 0
    counted = _Counting(lines)
    async for docs in batches(counted):
        for i in range(0, len(docs), BATCH):
            errors = await client.bulk_docs_replicated(docs[i:i + BATCH])
            failed += len(errors)
            loaded += len(docs[i:i + BATCH]) - len(errors)
        progress.advance(counted.take() if total_bytes else len(docs))
    progress.finish(docs=loaded, failed=failed)
    return {"docs": loaded, "failed": failed}


class _Counting:
    """Lines of the input, counting the bytes read since the last `take()` (for the progress bar)."""

    def __init__(self, lines: Iterable[bytes]):
        self._lines = iter(lines)
        self._n = 0

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        line = next(self._lines)
        self._n += len(line)
        return line

    def take(self) -> int:
        n, self._n = self._n, 0
        return n


def _write(out: BinaryIO, value: Any) -> None:
    out.write(jsonutil.dumps(value) + b"\n")
