"""Who is asking: names and passwords, `Authorization` headers and `AuthSession` cookies turned
into a user context.

Server admins come from `[admins]` (role `_admin`), users from `_users` documents
(`org.couchdb.user:<name>`, their `roles`). PBKDF2 is deliberately slow, so a password check runs
on a worker thread, and a successful check is remembered keyed by a digest of the name, the
password and the stored credentials: a changed user document (new salt, new key) or admin hash
misses the cache, so the old password stops working at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from . import jwtauth, sessions, users
from .errors import BadRequest, Forbidden, NotFound, Unauthorized
from .lockout import LOCKED_REASON, Lockout
from .lockout_shared import SharedLockout
from .passwords import salt_of, verify_password
from .security import USERS_DB, UserCtx

log = logging.getLogger("couchpy.auth")

WRONG_PASSWORD = "Name or password is incorrect."
_CACHE_MAX = 10000
DEFAULT_HANDLERS = ("cookie", "default")
_HANDLER_RE = re.compile(r"(jwt|proxy|cookie|default)_authentication_handler")
_PROXY_HASHES = {"sha": hashlib.sha1, "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def handler_names(raw: str | None) -> tuple[str, ...]:
    """`[chttpd] authentication_handlers` as handler names, in order."""
    found = tuple(_HANDLER_RE.findall(raw or ""))
    return found or DEFAULT_HANDLERS


class Credentials:
    """The stored credentials of one principal."""

    __slots__ = ("name", "stored", "salt", "roles")

    def __init__(self, name: str, stored: str, salt: str, roles: tuple[str, ...]):
        self.name, self.stored, self.salt, self.roles = name, stored, salt, roles

    def ctx(self) -> UserCtx:
        return UserCtx(self.name, self.roles)


class Authenticator:
    def __init__(self, node, lockout: Lockout | SharedLockout | None = None):
        """`lockout`: the failed-login table, this process's own unless given (several workers
        share a SharedLockout)."""
        self.node = node
        self.config = node.config
        self._ok: set[bytes] = set()
        self._headers: dict[str, tuple[str, str]] = {}
        self._admins: dict[str, str] = {}
        self._admins_version = -1
        self.lockout = lockout if lockout is not None else Lockout()
        self._lockout_version = -1
        # Password checks get their own few threads: a storm of wrong passwords then queues there
        # instead of taking every core from the event loop (PBKDF2 releases the GIL, so without a
        # cap it would use as many cores as the default executor has threads).
        threads = self.config.get_int("chttpd_auth", "password_check_threads", 0) or max(1, (os.cpu_count() or 2) // 2)
        self._hashing = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="couchpy-password",
                                           initializer=_lowest_priority)
        # checks wait their turn here, on the loop, so the lockout is looked at again just before
        # hashing: a storm against one user stops costing PBKDF2 runs once it locks the user out
        self._slots = asyncio.Semaphore(threads)

    # ---- stored credentials ----

    def lookup(self, name: str) -> Credentials | None:
        """A server admin by that name, else a `_users` user, else None."""
        if self._admins_version != self.config.version:
            self._admins = self.config.section("admins")
            self._admins_version = self.config.version
        stored = self._admins.get(name)
        if stored is not None:
            return Credentials(name, stored, salt_of(stored), ("_admin",))
        if not self.node.exists(USERS_DB):
            return None
        try:
            doc = self.node.get_db(USERS_DB).get(users.doc_id(name))
        except NotFound:
            return None
        stored = users.stored_hash(doc)
        roles = doc.get("roles")
        if stored is None or doc.get("name") != name or not isinstance(roles, list):
            return None
        return Credentials(name, stored, str(doc.get("salt")), tuple(r for r in roles if isinstance(r, str)))

    # ---- passwords ----

    def _lockout_mode(self) -> str:
        if self._lockout_version != self.config.version:
            section = self.config.section("chttpd_auth_lockout")
            self.lockout.threshold = _int(section.get("threshold"), 5)
            self.lockout.max_lifetime_s = _int(section.get("max_lifetime"), 300000) / 1000
            self.lockout.max_objects = _int(section.get("max_objects"), 10000)
            self._lockout_version = self.config.version
        return (self.config.get("chttpd_auth_lockout", "mode") or "enforce").strip()

    def _refuse_if_locked(self, name: str, address: str) -> str:
        mode = self._lockout_mode()
        if mode == "enforce" and self.lockout.is_locked(name, address, time.monotonic()):
            raise Forbidden(LOCKED_REASON)
        return mode

    async def verify(self, name: str, password: str, address: str = "") -> UserCtx | None:
        """The user's context when the password is right (cached when right), else None.
        A name and address locked out after repeated failures is refused (403) unchecked."""
        mode = self._refuse_if_locked(name, address)
        ctx = await self._check_password(name, password, address)
        if ctx is None and mode in ("enforce", "warn"):
            self.lockout.failed(name, address, time.monotonic())
            if mode == "warn" and self.lockout.is_locked(name, address, time.monotonic()):
                log.warning("repeated authentication failures for a user from %s", address)
        elif ctx is not None:
            self.lockout.succeeded(name, address)
        return ctx

    async def _check_password(self, name: str, password: str, address: str) -> UserCtx | None:
        creds = self.lookup(name)
        if creds is None:
            return None
        key = hashlib.sha256(f"{name}\0{password}\0{creds.stored}".encode()).digest()
        if key in self._ok:
            return creds.ctx()
        async with self._slots:
            self._refuse_if_locked(name, address)
            if key in self._ok:  # checked while this one waited: a client's connections all
                return creds.ctx()  # sending the same header at once cost one PBKDF2, not each one
            ok = await asyncio.get_running_loop().run_in_executor(self._hashing, verify_password, password,
                                                                  creds.stored)
        if not ok:
            return None
        if len(self._ok) > _CACHE_MAX:
            self._ok.clear()
        self._ok.add(key)
        return creds.ctx()

    async def from_header(self, header: str | None, address: str = "") -> UserCtx | None:
        """The user of an `Authorization: Basic` header; None when there is none, or it is not
        basic auth, or it is malformed without being invalid base64 (CouchDB then serves the
        request anonymously). A wrong password is 401."""
        if not header:
            return None
        known = self._headers.get(header)
        if known is not None:
            creds = self.lookup(known[0])
            if creds is not None and creds.stored == known[1]:
                self._refuse_if_locked(creds.name, address)
                return creds.ctx()
        scheme, sep, value = header.partition(" ")
        if scheme != "Basic" or not sep:
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True)
        except binascii.Error:
            raise BadRequest("Authorization header has invalid base64 value") from None
        name, colon, password = decoded.decode("utf-8", "replace").partition(":")
        if not colon or (name, password) == ("_", "_"):
            return None
        ctx = await self.verify(name, password, address)
        if ctx is None:
            raise Unauthorized(WRONG_PASSWORD)
        creds = self.lookup(name)
        if creds is not None:
            self._remember(header, name, creds.stored)
        return ctx

    # ---- JWT and proxy authentication ----

    def from_bearer(self, header: str | None) -> UserCtx | None:
        """The user of an `Authorization: Bearer <JWT>` header (None without one)."""
        if not header or not header.startswith("Bearer "):
            return None
        return jwtauth.decode(header[len("Bearer "):].strip(), self.config.section("jwt_keys"),
                              self.config.section("jwt_auth"), time.time())

    def from_proxy(self, headers: Mapping[str, str]) -> UserCtx | None:
        """The user a trusted proxy names in `X-Auth-CouchDB-UserName`/`-Roles`, its
        `X-Auth-CouchDB-Token` the HMAC of the name by the shared secret (when
        `[chttpd_auth] proxy_use_secret` is true). A wrong token is ignored, as CouchDB does."""
        name = headers.get("X-Auth-CouchDB-UserName")
        if not name:
            return None
        if _flag(self.config.get("chttpd_auth", "proxy_use_secret")):
            token = headers.get("X-Auth-CouchDB-Token", "")
            if not self._proxy_token_ok(name, token):
                return None
        roles = tuple(r.strip() for r in headers.get("X-Auth-CouchDB-Roles", "").split(",") if r.strip())
        return UserCtx(name, roles)

    def _proxy_token_ok(self, name: str, token: str) -> bool:
        secret = self._secret()
        if not secret or not token:
            return False
        algorithms = self.config.get("chttpd_auth", "hash_algorithms") or "sha256, sha"
        for algo in (a.strip() for a in algorithms.split(",")):
            digest = _PROXY_HASHES.get(algo)
            if digest and hmac.compare_digest(hmac.new(secret.encode(), name.encode(), digest).hexdigest(), token):
                return True
        return False

    def _remember(self, header: str, name: str, stored: str) -> None:
        # The exact header of a verified request maps straight to its user (until the stored
        # credentials change), so the common case costs one dict lookup.
        if len(self._headers) > _CACHE_MAX:
            self._headers.clear()
        self._headers[header] = (name, stored)

    # ---- cookie sessions ----

    @property
    def session_timeout(self) -> int:
        return self.config.get_int("chttpd_auth", "timeout", 600) or 600

    def _secret(self) -> str:
        return self.config.get("chttpd_auth", "secret") or ""

    def issue_cookie(self, name: str) -> str | None:
        creds = self.lookup(name)
        if creds is None:
            return None
        return sessions.make_token(self._secret(), creds.salt, name, int(time.time()) + self.session_timeout)

    def check_cookie(self, token: str) -> tuple[UserCtx, int] | None:
        """(user, expiry) for a genuine unexpired AuthSession token."""
        name = sessions.token_name(token)
        creds = self.lookup(name) if name is not None else None
        if creds is None:
            return None
        expires = sessions.check_token(self._secret(), creds.salt, token, int(time.time()))
        return None if expires is None else (creds.ctx(), expires)


def _lowest_priority() -> None:
    """Run this (hashing) thread at the lowest CPU priority: on a busy machine the event loop,
    which serves every other request, comes first (Linux gives each thread its own nice value)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass  # not Linux, or not permitted: the thread cap alone still applies


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def _flag(raw: str | None) -> bool:
    return (raw or "").strip().lower() == "true"
