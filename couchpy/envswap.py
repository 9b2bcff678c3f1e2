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


def recover(directory: Path, live: str = LIVE) -> None:
    """Complete or clean up a swap a crash interrupted; call before opening `directory/main`."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    present = {name for name in names(live) if (directory / name).exists()}
    steps = plan(present, live)
    for step in steps:
        if step[0] == "rename":
            os.rename(directory / step[1], directory / step[2])
            fsync_path(directory)
        else:
            _remove(directory / step[1])
    if steps:
        fsync_path(directory)


def discard_copy(directory: Path, live: str = LIVE) -> None:
    """Remove a stale copy before writing a new one (LMDB refuses to copy over an existing file)."""
    recover(directory, live)
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
