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
import time

from . import sessions, users
from .errors import BadRequest, NotFound, Unauthorized
from .passwords import salt_of, verify_password
from .security import USERS_DB, UserCtx

WRONG_PASSWORD = "Name or password is incorrect."
_CACHE_MAX = 10000


class Credentials:
    """The stored credentials of one principal."""

    __slots__ = ("name", "stored", "salt", "roles")

    def __init__(self, name: str, stored: str, salt: str, roles: tuple[str, ...]):
        self.name, self.stored, self.salt, self.roles = name, stored, salt, roles

    def ctx(self) -> UserCtx:
        return UserCtx(self.name, self.roles)


class Authenticator:
    def __init__(self, node):
        self.node = node
        self.config = node.config
        self._ok: set[bytes] = set()
        self._headers: dict[str, tuple[str, str]] = {}
        self._admins: dict[str, str] = {}
        self._admins_version = -1

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

    async def verify(self, name: str, password: str) -> UserCtx | None:
        """The user's context when the password is right (cached when right), else None."""
        creds = self.lookup(name)
        if creds is None:
            return None
        key = hashlib.sha256(f"{name}\0{password}\0{creds.stored}".encode()).digest()
        if key in self._ok:
            return creds.ctx()
        ok = await asyncio.get_running_loop().run_in_executor(None, verify_password, password, creds.stored)
        if not ok:
            return None
        if len(self._ok) > _CACHE_MAX:
            self._ok.clear()
        self._ok.add(key)
        return creds.ctx()

    async def from_header(self, header: str | None) -> UserCtx | None:
        """The user of an `Authorization: Basic` header; None when there is none, or it is not
        basic auth, or it is malformed without being invalid base64 (CouchDB then serves the
        request anonymously). A wrong password is 401."""
        if not header:
            return None
        known = self._headers.get(header)
        if known is not None:
            creds = self.lookup(known[0])
            if creds is not None and creds.stored == known[1]:
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
        ctx = await self.verify(name, password)
        if ctx is None:
            raise Unauthorized(WRONG_PASSWORD)
        creds = self.lookup(name)
        if creds is not None:
            self._remember(header, name, creds.stored)
        return ctx

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
