"""Password hashing as CouchDB stores admin passwords: salted PBKDF2.

Stored form (CouchDB 3.4's): `-pbkdf2:sha256-<derived key hex>,<salt hex>,<iterations>`. The older
`-pbkdf2-<hex>,<salt>,<iterations>` (PBKDF2-SHA1) is accepted when verifying, so a `local.ini`
carried over from CouchDB keeps working. Plain text is never stored: `is_hashed` tells the config
loader which entries to replace.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX_SHA256 = "-pbkdf2:sha256-"
PREFIX_SHA1 = "-pbkdf2-"


def hash_password(password: str, iterations: int = 600000, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(16)
    dk = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"{PREFIX_SHA256}{dk.hex()},{salt},{iterations}"


def is_hashed(stored: str) -> bool:
    return stored.startswith(PREFIX_SHA256) or stored.startswith(PREFIX_SHA1)


def verify_password(password: str, stored: str) -> bool:
    if stored.startswith(PREFIX_SHA256):
        algo, rest = "sha256", stored[len(PREFIX_SHA256):]
    elif stored.startswith(PREFIX_SHA1):
        algo, rest = "sha1", stored[len(PREFIX_SHA1):]
    else:
        return False
    try:
        derived, salt, iterations = rest.split(",")
        n = int(iterations)
    except ValueError:
        return False
    dk = hashlib.pbkdf2_hmac(algo, password.encode(), salt.encode(), n, len(bytes.fromhex(derived)))
    return hmac.compare_digest(dk.hex(), derived.lower())
