"""Cookie sessions (`AuthSession`), as CouchDB's cookie authentication hands them out.

A token is `base64url(name:expiry_hex:mac)`, the MAC an HMAC-SHA256 keyed by the server secret
and the user's password salt (as CouchDB keys it): it needs no server-side state, expires on its
own, and changing the password (a new salt) invalidates every cookie issued before. Pure
functions, no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def _mac(secret: str, user_salt: str, name: str, expiry_hex: str) -> str:
    key = (secret + "\0" + user_salt).encode()
    return hmac.new(key, f"{name}:{expiry_hex}".encode(), hashlib.sha256).hexdigest()


def make_token(secret: str, user_salt: str, name: str, expires_at: int) -> str:
    expiry_hex = format(expires_at, "X")
    raw = f"{name}:{expiry_hex}:{_mac(secret, user_salt, name, expiry_hex)}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def token_name(token: str) -> str | None:
    """The user name a token claims (not yet verified)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    name, sep, _ = raw.rpartition(":")
    name, sep2, _ = name.rpartition(":")
    return name if sep and sep2 else None


def check_token(secret: str, user_salt: str, token: str, now: int) -> int | None:
    """The token's expiry time when it is genuine and unexpired, else None."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        rest, _, mac = raw.rpartition(":")
        name, _, expiry_hex = rest.rpartition(":")
        expires_at = int(expiry_hex, 16)
    except (ValueError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(mac, _mac(secret, user_salt, name, expiry_hex)):
        return None
    return expires_at if now < expires_at else None
