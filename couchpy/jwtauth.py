"""JWT bearer tokens, as CouchDB's `jwt_authentication_handler` reads them.

Keys come from `[jwt_keys]`: `hmac:<kid> = <base64 secret>`, `rsa:<kid> = <PEM>`,
`ec:<kid> = <PEM>` (PEM line breaks written as `\\n`); a token without a `kid` uses `_default`.
`[jwt_auth] required_claims` (comma-separated) lists the claims a token must carry; `exp` is
checked against the clock when present and numeric, `nbf` when it is required (as CouchDB does). The user is `sub`, the roles the
claim named by `[jwt_auth] roles_claim_path` (dots walk into objects) or `roles_claim_name`
(default `_couchdb.roles`). Refusals carry CouchDB's status and reason.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import jwt
from jwt.algorithms import get_default_algorithms

from .errors import BadRequest, CouchError, Unauthorized
from .security import UserCtx

_KINDS = {"HS": "hmac", "RS": "rsa", "PS": "rsa", "ES": "ec"}
DEFAULT_ALGORITHMS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]


def _csv(raw: str | None) -> list[str]:
    return [p.strip() for p in (raw or "").split(",") if p.strip()]


def _key(keys: dict[str, str], alg: str, kid: str) -> Any:
    kind = _KINDS.get(alg[:2])
    raw = keys.get(f"{kind}:{kid}") if kind else None
    if raw is None:
        raise BadRequest("Unknown kid")
    if kind == "hmac":
        try:
            return base64.b64decode(raw.strip(), validate=True)
        except binascii.Error:
            raise BadRequest("Unknown kid") from None
    return raw.replace("\\n", "\n").encode()


def _roles(claims: dict, path: str | None, name: str | None) -> tuple[str, ...]:
    if path:
        value: Any = claims
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    else:
        value = claims.get(name or "_couchdb.roles")
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def decode(token: str, keys: dict[str, str], auth_config: dict[str, str], now: float) -> UserCtx:
    """The user a bearer token names; a CouchError when it is not to be trusted."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise BadRequest("Malformed token") from None
    alg = header.get("alg")
    allowed = _csv(auth_config.get("allowed_algorithms")) or DEFAULT_ALGORITHMS
    if not isinstance(alg, str) or alg not in allowed or alg not in get_default_algorithms():
        raise BadRequest("Invalid alg header parameter")
    kid = header.get("kid") if isinstance(header.get("kid"), str) else "_default"
    key = _key(keys, alg, kid)
    try:
        claims = jwt.decode(token, key, algorithms=[alg], options={
            "verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False,
            "verify_iss": False, "verify_sub": False, "verify_jti": False})
    except jwt.InvalidSignatureError:
        raise BadRequest("Bad HMAC" if alg.startswith("HS") else "Bad signature") from None
    except (jwt.InvalidKeyError, ValueError, TypeError):
        raise BadRequest("Unknown kid") from None
    except jwt.PyJWTError:
        raise BadRequest("Malformed token") from None
    for claim in _csv(auth_config.get("required_claims")):
        if claim not in claims:
            raise BadRequest(f"Missing {claim} claim")
    _check_time(claims, now, "nbf" in _csv(auth_config.get("required_claims")))
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Unauthorized("Token missing sub claim.")
    return UserCtx(sub, _roles(claims, auth_config.get("roles_claim_path"), auth_config.get("roles_claim_name")))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_time(claims: dict, now: float, check_nbf: bool) -> None:
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if _number(exp) and exp <= now:
        raise CouchError("exp not in future", "unauthorized", 401)
    if check_nbf and _number(nbf) and nbf > now:
        raise CouchError("nbf not in past", "unauthorized", 401)
