"""Password hashing as CouchDB stores admin passwords: salted PBKDF2.

Stored form (CouchDB 3.4's): `-pbkdf2:sha256-<derived key hex>,<salt hex>,<iterations>`. The other
forms CouchDB writes are accepted when verifying, so a `local.ini` carried over from CouchDB keeps
working: `-pbkdf2:<prf>-` for any `[chttpd_auth] pbkdf2_prf` (sha, sha224 ... sha512), the older
`-pbkdf2-<hex>,<salt>,<iterations>` (PBKDF2-SHA1) and the legacy `-hashed-<sha1 hex>,<salt>`. Plain text is never stored: `is_hashed` tells the config
loader which entries to replace.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX_SHA256 = "-pbkdf2:sha256-"
PREFIX_SHA1 = "-pbkdf2-"
PREFIX_SIMPLE = "-hashed-"
# CouchDB's pbkdf2_prf names -> hashlib names
_PRFS = {"sha": "sha1", "sha224": "sha224", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}


def pbkdf2_sha256(password: str, salt: str, iterations: int) -> str:
    """The derived key (hex) CouchDB stores for `pbkdf2_prf = sha256`."""
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations).hex()


def hash_password(password: str, iterations: int = 600000, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(16)
    return f"{PREFIX_SHA256}{pbkdf2_sha256(password, salt, iterations)},{salt},{iterations}"


def salt_of(stored: str) -> str:
    """The salt of a stored hash ("" when it is not one): cookie sessions are keyed by it."""
    split = _split(stored)
    parts = split[1].split(",") if split else []
    return parts[1] if len(parts) > 1 else ""


def _split(stored: str) -> tuple[str, str] | None:
    """(hashlib algorithm or "simple", rest) of a stored hash; None when it is not one."""
    if stored.startswith(PREFIX_SIMPLE):
        return "simple", stored[len(PREFIX_SIMPLE):]
    if stored.startswith(PREFIX_SHA1):
        return "sha1", stored[len(PREFIX_SHA1):]
    if stored.startswith("-pbkdf2:"):
        prf, sep, rest = stored[len("-pbkdf2:"):].partition("-")
        if sep and prf in _PRFS:
            return _PRFS[prf], rest
    return None


def is_hashed(stored: str) -> bool:
    return _split(stored) is not None


def verify_password(password: str, stored: str) -> bool:
    split = _split(stored)
    if split is None:
        return False
    algo, rest = split
    try:
        if algo == "simple":
            derived, salt = rest.split(",")
            dk = hashlib.sha1(password.encode() + salt.encode()).digest()
        else:
            derived, salt, iterations = rest.split(",")
            n = int(iterations)
            dk = hashlib.pbkdf2_hmac(algo, password.encode(), salt.encode(), n, len(bytes.fromhex(derived)))
    except ValueError:  # malformed entry (bad hex, bad count): never a match, never a crash
        return False
    return hmac.compare_digest(dk.hex(), derived.lower())
