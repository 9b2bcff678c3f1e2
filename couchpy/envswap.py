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
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Literal

LIVE = "main"
NEW = "main.compact"
OLD = "main.old"

Step = tuple[Literal["rename"], str, str] | tuple[Literal["remove"], str]


def plan(present: set[str]) -> list[Step]:
    """The steps that leave exactly one environment, `main`, given which of the three exist.

    Only ever moves a directory into `main` when `main` is missing, and only removes a directory
    while another complete one is kept.
    """
    steps: list[Step] = []
    if LIVE not in present:
        if NEW in present:
            # Step 1 happened (or the copy is all there is): the sealed copy becomes the database.
            steps.append(("rename", NEW, LIVE))
            if OLD in present:
                steps.append(("remove", OLD))
            return steps
        if OLD in present:
            return [("rename", OLD, LIVE)]
        return []
    for name in (NEW, OLD):
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


def recover(directory: Path) -> None:
    """Complete or clean up a swap a crash interrupted; call before opening `directory/main`."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    present = {name for name in (LIVE, NEW, OLD) if (directory / name).exists()}
    steps = plan(present)
    for step in steps:
        if step[0] == "rename":
            os.rename(directory / step[1], directory / step[2])
            fsync_path(directory)
        else:
            _remove(directory / step[1])
    if steps:
        fsync_path(directory)


def discard_copy(directory: Path) -> None:
    """Remove a stale copy before writing a new one (LMDB refuses to copy over an existing file)."""
    recover(directory)
    _remove(Path(directory) / NEW)


def install(directory: Path, close, reopen) -> None:
    """Swap the sealed copy in: `close()` the environment, two renames, `reopen()` it.

    Synchronous on purpose: the caller runs it where no reader or writer can be inside the
    environment. `main.old` is left for `finish` (removing it can take a while)."""
    directory = Path(directory)
    close()
    try:
        os.rename(directory / LIVE, directory / OLD)
        fsync_path(directory)
        os.rename(directory / NEW, directory / LIVE)
        fsync_path(directory)
    except BaseException:
        # Whatever failed, reopen what `recover` says is the database, never an empty `main`.
        recover(directory)
        raise
    finally:
        reopen()


def finish(directory: Path) -> None:
    """Remove the replaced environment (after `install`)."""
    directory = Path(directory)
    _remove(directory / OLD)
    fsync_path(directory)
