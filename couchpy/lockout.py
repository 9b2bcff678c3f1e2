"""Failed-login lockout, as CouchDB 3.4's `[chttpd_auth_lockout]`.

After `threshold` failed password checks for one user from one client address within
`max_lifetime` milliseconds, that pair is locked out: further attempts are refused (403) without
checking the password at all, the right one included, until the failures age out. A password
storm therefore costs almost nothing once it is locked out. `mode = warn` only logs, `off`
disables it. Pure data structure (the caller passes the time); the table is bounded.
"""

from __future__ import annotations

from collections import OrderedDict

LOCKED_REASON = "Account is temporarily locked due to multiple authentication failures"


class Lockout:
    def __init__(self, threshold: int = 5, max_lifetime_s: float = 300.0, max_objects: int = 10000):
        self.threshold = threshold
        self.max_lifetime_s = max_lifetime_s
        self.max_objects = max_objects
        # (user, address) -> (failures, time of the first failure of this run)
        self._failures: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()

    def _live(self, key: tuple[str, str], now: float) -> tuple[int, float] | None:
        entry = self._failures.get(key)
        if entry is not None and now - entry[1] >= self.max_lifetime_s:
            del self._failures[key]
            return None
        return entry

    def is_locked(self, user: str, address: str, now: float) -> bool:
        entry = self._live((user, address), now)
        return entry is not None and entry[0] >= self.threshold

    def failed(self, user: str, address: str, now: float) -> None:
        key = (user, address)
        entry = self._live(key, now)
        count, first = entry if entry is not None else (0, now)
        self._failures[key] = (count + 1, first)
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_objects:
            self._failures.popitem(last=False)

    def succeeded(self, user: str, address: str) -> None:
        self._failures.pop((user, address), None)
