"""Progress of a long command: a tqdm bar on a terminal, one JSON summary line when piped.

On a terminal (stderr is a TTY) the bar shows done/total, rate and time left; otherwise nothing is
drawn and `finish` prints one machine-readable line, e.g. `{"ok": true, "docs": 1200, "seconds": 3.2}`.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

from couchpy import jsonutil


class Progress:
    def __init__(self, label: str, out: TextIO | None = None, bar: bool | None = None):
        self.label = label
        self.out = out or sys.stderr
        self.bar_enabled = self.out.isatty() if bar is None else bar
        self._bar: tqdm | None = None
        self.t0 = time.monotonic()

    def start(self, total: int | None, unit: str) -> None:
        self.t0 = time.monotonic()
        if self.bar_enabled:
            self._bar = tqdm(total=total or None, unit=unit, desc=self.label, file=self.out,
                             unit_scale=unit == "B", dynamic_ncols=True, leave=True)

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def set_fraction(self, percent: float) -> None:
        """For work whose progress the server reports as a percentage (compaction)."""
        if self._bar is not None:
            self._bar.update(max(0.0, percent - self._bar.n))

    def finish(self, **summary: Any) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        line = {"ok": True, **summary, "seconds": round(time.monotonic() - self.t0, 3)}
        if not self.bar_enabled:
            self.out.write(jsonutil.dumps(line).decode() + "\n")
            self.out.flush()
