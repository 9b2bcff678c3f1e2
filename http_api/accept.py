"""Content negotiation as CouchDB does it (mochiweb's accepts_content_type): which media types an
`Accept` header admits. Pure, no I/O."""

from __future__ import annotations


def _quality(params: list[str]) -> float:
    for p in params:
        key, _, value = p.strip().partition("=")
        if key.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def accepts(header: str | None, media: str) -> bool:
    """Whether `media` (e.g. "multipart/mixed") is acceptable: no `Accept` header admits anything;
    otherwise a listed range must match it exactly, as `type/*` or as `*/*`, with a quality
    above zero."""
    if header is None or not header.strip():
        return True
    media = media.lower()
    kind = media.split("/", 1)[0]
    for item in header.split(","):
        token, *params = item.split(";")
        token = token.strip().lower()
        if token in (media, kind + "/*", "*/*") and _quality(params) > 0:
            return True
    return False
