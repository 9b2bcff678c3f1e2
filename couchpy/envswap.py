"""Replacing a database's LMDB environment by its compacted copy, so that a crash at any point
leaves one complete environment behind.

The environment lives in `<db dir>/main`. Compaction writes a copy into `main.compact`, makes it
durable (`seal`), then swaps it in with two renames (`install`):

    1. main          -> main.old      (fsync of the database directory)
    2. main.compact  -> main          (fsync of the database directory)
    3. remove main.old

Linux has no portable atomic exchange of two directories, so there is a moment with no `main`.
`recover`, run before an environment is opened, finishes whatever a crash interrupted: the
copy is sealed before step 1, so once `main` is gone `main.compact` is complete and is moved in;
while `main` exists it is the truth and leftovers are garbage. Without this, opening a database
whose `main` is missing would create a fresh, empty environment and lose everything.

`plan` is the decision alone (names present -> steps), so it can be tested without a disk.

A view index swaps the same way under its own name (`views/<signature>` with
`<signature>.compact` and `<signature>.old` beside it): every function takes the live name.

Several server processes (`couchpy serve --workers`) may have a database's environment open while
one of them compacts it. Whole directories are renamed, so each environment keeps its own LMDB lock
file (reader table, writer mutex, last transaction id) under it: a process that still has the old
one open goes on sharing the old lock file with the compactor, never the new one's. Two flock(2)
files in the database directory keep the processes apart:

- `swap.lock`: held exclusively while `main` is renamed (and while a crash's swap is completed),
  shared while an environment is opened (`opening`), so nobody opens or creates `main` while it is
  missing;
- `compact.lock`: held by the compacting process for the whole compaction (`compacting`), so
  `recover` in another process does not remove the copy being written.

The replaced environment is marked retired (couchpy.storage.RETIRED_KEY) in its own last commit
before another process can write into the new one; `recover` marks it too when a crash came
between the renames and that commit. The processes still holding it see the mark and move to the
new one (couchpy.storage.Store, `follow`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

LIVE = "main"
NEW = "main.compact"
OLD = "main.old"
SWAP_LOCK = "swap.lock"
COMPACT_LOCK = "compact.lock"

Step = tuple[Literal["rename"], str, str] | tuple[Literal["remove"], str]


def names(live: str = LIVE) -> tuple[str, str, str]:
    """(live, copy, replaced) directory names of an environment called `live`."""
    return (LIVE, NEW, OLD) if live == LIVE else (live, live + ".compact", live + ".old")


def plan(present: set[str], live: str = LIVE) -> list[Step]:
    """The steps that leave exactly one environment, `live` (`main`), given which of the three exist.

    Only ever moves a directory into `live` when it is missing, and only removes a directory
    while another complete one is kept.
    """
    live, new, old = names(live)
    steps: list[Step] = []
    if live not in present:
        if new in present:
            # Step 1 happened (or the copy is all there is): the sealed copy becomes the database.
            steps.append(("rename", new, live))
            if old in present:
                steps.append(("remove", old))
            return steps
        if old in present:
            return [("rename", old, live)]
        return []
    for name in (new, old):
        if name in present:
            steps.append(("remove", name))
    return steps


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a directory's fsync makes the renames inside it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def seal(copy: Path) -> None:
    """Make a freshly written environment copy durable: its files, the directory, its parent."""
    for entry in sorted(copy.iterdir()):
        if entry.is_file():
            fsync_path(entry)
    fsync_path(copy)
    fsync_path(copy.parent)


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def flock(path: Path, mode: int = fcntl.LOCK_EX) -> Iterator[int]:
    """Hold an flock(2) on the lock file at `path` (created if missing) for the block: the lock
    between the server processes that share a data directory (its release is the close)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, mode)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def data_file_ino(directory: Path) -> int:
    """The inode of the LMDB data file in `directory` (-1 when there is none): it changes when
    another process swaps a compacted copy in, which an open environment does not notice."""
    try:
        return os.stat(Path(directory) / "data.mdb").st_ino
    except OSError:
        return -1


def swap_lock(directory: Path, exclusive: bool) -> contextlib.AbstractContextManager[int]:
    """Hold the database directory's swap lock: exclusively while `main` is replaced, shared
    while it is opened."""
    return flock(Path(directory) / SWAP_LOCK, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)


def compacting(directory: Path) -> contextlib.AbstractContextManager[int]:
    """Held for a whole compaction: its copy is not a crash's leftover."""
    return flock(Path(directory) / COMPACT_LOCK, fcntl.LOCK_EX)


def compaction_running(directory: Path) -> bool:
    """Whether a process (this one included) is compacting the database now."""
    try:
        fd = os.open(Path(directory) / COMPACT_LOCK, os.O_RDWR)
    except FileNotFoundError:  # never compacted (or the database is gone)
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


Retire = Callable[[Path], None]


def recover(directory: Path, live: str = LIVE, retire: Retire | None = None) -> None:
    """Complete or clean up a swap a crash interrupted; call before opening `directory/main`.

    With `retire`, the replaced environment (`main.old` beside a `main`) is marked retired by
    `retire(path)` before it is removed (other processes may still have it open), and a copy a
    live compaction is writing is left alone."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    present = {name for name in names(live) if (directory / name).exists()}
    _, new, old = names(live)
    if retire is not None and new in present and live in present and compaction_running(directory):
        present.discard(new)
    steps = plan(present, live)
    for step in steps:
        if step[0] == "rename":
            os.rename(directory / step[1], directory / step[2])
            fsync_path(directory)
        else:
            if retire is not None and step[1] == old:
                retire(directory / old)
            _remove(directory / step[1])
    if steps:
        fsync_path(directory)


@contextlib.contextmanager
def opening(directory: Path, retire: Retire) -> Iterator[None]:
    """Hold while opening `directory/main` when other processes may swap it. Shared; exclusive
    when a crash left a swap to complete, or a replaced environment that may not be marked
    retired yet (killed between the renames and the commit of the mark): it is marked before
    this process can write into the new one. (It is removed by the compacting worker.)"""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)  # a new database's
    with swap_lock(directory, exclusive=False) as fd:
        if (directory / LIVE).exists() and not (directory / OLD).exists():
            yield
            return
        # flock converts the lock in place (not atomically: look again once it is exclusive)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not (directory / LIVE).exists():
            recover(directory, retire=retire)
        elif (directory / OLD).exists():
            retire(directory / OLD)
        yield


def discard_copy(directory: Path, live: str = LIVE, retire: Retire | None = None) -> None:
    """Remove a stale copy before writing a new one (LMDB refuses to copy over an existing file)."""
    recover(directory, live, retire)
    _remove(Path(directory) / names(live)[1])


def install(directory: Path, live: str = LIVE) -> None:
    """Swap the sealed copy in with the two renames; the caller has closed the environment
    (Store.swap) and opens it again afterwards. `main.old` is left for `finish` (removing it can
    take a while)."""
    directory = Path(directory)
    live, new, old = names(live)
    try:
        os.rename(directory / live, directory / old)
        fsync_path(directory)
        os.rename(directory / new, directory / live)
        fsync_path(directory)
    except BaseException:
        # Whatever failed, leave what `recover` says is the database, never an empty `main`.
        recover(directory, live)
        raise


def finish(directory: Path, live: str = LIVE) -> None:
    """Remove the replaced environment (after `install`)."""
    directory = Path(directory)
    _remove(directory / names(live)[2])
    fsync_path(directory)
