"""Middleware: CouchDB-shaped errors and authentication.

Every failure leaves as `{"error": ..., "reason": ...}` with CouchDB's status; an unexpected
exception is logged and answered 500 without taking the server down.

There is no "admin party": every request but `GET /`, `/_up` and `/_session` needs a server admin's
credentials (HTTP basic auth), checked against the salted PBKDF2 hashes in the configuration.
PBKDF2 is deliberately slow, so it runs off the event loop and a successful check is cached
(keyed by a digest of the credentials and the stored hash, so a changed password takes effect).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import time

from aiohttp import web

from couchpy.errors import CouchError, Unauthorized
from couchpy.node import pinning_scope
from couchpy import sessions, validation
from couchpy.passwords import verify_password

from .responses import error_response

log = logging.getLogger("couchpy.http")

OPEN_PATHS = {"/", "/_up", "/_session", "/favicon.ico"}

_HTTP_ERRORS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "too_large",
    415: "bad_content_type",
    416: "requested_range_not_satisfiable",
}


@web.middleware
async def couch_middleware(request: web.Request, handler):
    """The one middleware (each layer costs every request): authenticate, pin the databases the
    request opens until it is answered, and render every failure as CouchDB does."""
    try:
        with pinning_scope():
            refresh_for = await authenticate(request)
            response = await handler(request)
            if refresh_for is not None and not response.prepared:
                auth: Authenticator = request.app["auth"]
                set_session_cookie(response, auth.issue_cookie(refresh_for), auth.session_timeout)
            return response
    except CouchError as exc:
        return error_response(exc.status, exc.error, exc.reason)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error = _HTTP_ERRORS.get(exc.status, "error")
        reason = {
            404: "Database does not exist." if False else "missing",
            405: "Only " + (exc.headers.get("Allow", "") or "other methods") + " allowed",
            413: "Request entity too large",
        }.get(exc.status, exc.reason or exc.text or error)
        if exc.status == 413:
            error = "too_large"
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, error, reason, headers)
    except ConnectionResetError:
        # The client went away mid-response (a dropped feed): routine, not an error to log. Nothing
        # can reach the client any more; aiohttp quietly discards this placeholder.
        return web.Response(status=499, reason="Client Closed Request")
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug must not take the server down
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "unknown_error", f"{type(exc).__name__}: {exc}")


class Authenticator:
    def __init__(self, config):
        self.config = config
        self._ok: set[bytes] = set()
        self._headers: dict[str, tuple[str, str]] = {}
        self._admins: dict[str, str] = {}
        self._admins_version = -1

    def _stored(self, name: str) -> str | None:
        if self._admins_version != self.config.version:
            self._admins = self.config.section("admins")
            self._admins_version = self.config.version
        return self._admins.get(name)

    # ---- cookie sessions (POST /_session) ----

    @property
    def session_timeout(self) -> int:
        return self.config.get_int("chttpd_auth", "timeout", 600) or 600

    def _secret(self) -> str:
        return self.config.get("chttpd_auth", "secret") or ""

    def issue_cookie(self, name: str) -> str:
        stored = self._stored(name) or ""
        return sessions.make_token(self._secret(), stored, name, int(time.time()) + self.session_timeout)

    def check_cookie(self, token: str) -> tuple[str, int] | None:
        """(name, expiry) for a genuine unexpired AuthSession token."""
        name = sessions.token_name(token)
        stored = self._stored(name) if name is not None else None
        if stored is None:
            return None
        expires = sessions.check_token(self._secret(), stored, token, int(time.time()))
        return None if expires is None else (name, expires)

    async def verify(self, name: str, password: str) -> bool:
        """Check a name and password against the stored PBKDF2 hash (cached when right)."""
        stored = self._stored(name)
        if stored is None:
            return False
        key = hashlib.sha256(f"{name}\0{password}\0{stored}".encode()).digest()
        if key in self._ok:
            return True
        ok = await asyncio.get_running_loop().run_in_executor(None, verify_password, password, stored)
        if ok:
            if len(self._ok) > 10000:
                self._ok.clear()
            self._ok.add(key)
        return ok

    async def check(self, header: str | None) -> str | None:
        """The admin name for a valid `Authorization: Basic` header; None when absent."""
        if not header:
            return None
        known = self._headers.get(header)
        if known is not None and self._stored(known[0]) == known[1]:
            return known[0]
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise Unauthorized("Name or password is incorrect.")
        try:
            name, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("Name or password is incorrect.") from None
        if not await self.verify(name, password):
            raise Unauthorized("Name or password is incorrect.")
        self._remember(header, name, self._stored(name) or "")
        return name

    def _remember(self, header: str, name: str, stored: str) -> None:
        # The exact header of a verified request maps straight to its user (until the stored hash
        # changes), so the common case costs one dict lookup.
        if len(self._headers) > 10000:
            self._headers.clear()
        self._headers[header] = (name, stored)


async def authenticate(request: web.Request) -> str | None:
    """Set request["user"] from basic auth or an AuthSession cookie; 401 where credentials are
    needed. Returns the user whose cookie should be renewed (past half its life), if any."""
    auth: Authenticator = request.app["auth"]
    header = request.headers.get("Authorization")
    user = await auth.check(header) if header else None
    request["auth_method"] = "default" if user else None
    refresh_for = None
    if user is None:
        token = request.cookies.get("AuthSession")
        if token:
            session = auth.check_cookie(token)
            if session is not None:
                user = session[0]
                request["auth_method"] = "cookie"
                # past half its life, a used cookie is renewed (CouchDB renews before expiry too)
                if session[1] - time.time() < auth.session_timeout / 2:
                    refresh_for = user
    request["user"] = user
    if user is None and request.path not in OPEN_PATHS:
        raise Unauthorized("You are not a server admin.")
    # what validate_doc_update functions see as userCtx (every authenticated user is an admin)
    validation.current_user.set({"name": user, "roles": ["_admin"] if user else []})
    return refresh_for


def set_session_cookie(response: web.StreamResponse, token: str, max_age: int) -> None:
    response.set_cookie("AuthSession", token, path="/", httponly=True, max_age=max_age, samesite="Lax")
