"""Configuration: an INI file with CouchDB's section and key names.

`[couchdb] max_document_size`, `[chttpd] bind_address / port / max_http_request_size`, `[admins]` and
so on mean what they mean in CouchDB's `local.ini`. Values not in the file fall back to DEFAULTS.
The file is rewritten only to replace plain-text admin passwords by their hashes, and to record
values generated on first start (the node uuid, the auth secret).
"""

from __future__ import annotations

import configparser
import os
import secrets
from pathlib import Path

DEFAULTS: dict[str, dict[str, str]] = {
    "couchdb": {
        "max_document_size": "8000000",
        "max_attachment_size": "infinity",
        "max_dbs_open": "500",
        "max_document_id_length": "infinity",
        "os_process_timeout": "5000",
    },
    "chttpd": {
        "bind_address": "127.0.0.1",
        "port": "5984",
        "max_http_request_size": "4294967296",
    },
    "couch_httpd_auth": {"iterations": "600000"},
    "attachments": {
        "compressible_types": "text/*, application/javascript, application/json, application/xml",
        "compression_level": "8",
    },
    "replicator": {"max_jobs": "500", "interval": "60000", "checkpoint_interval": "30000"},
    "query_servers": {},
    "log": {"level": "info", "slow_request_ms": "5000"},
    "admins": {},
}


class Config:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else None
        # "=" only, as CouchDB reads its ini files: keys such as `hmac:_default` hold a colon
        self._cp = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
        self._cp.optionxform = str  # keys are case-sensitive (admin names)
        self.version = 0  # bumped on every change, so readers can cache derived values
        if self.path and self.path.exists():
            self._cp.read(self.path, encoding="utf-8")

    def get(self, section: str, key: str, default: str | None = None) -> str | None:
        if self._cp.has_option(section, key):
            return self._cp.get(section, key)
        return DEFAULTS.get(section, {}).get(key, default)

    def get_int(self, section: str, key: str, default: int = 0) -> int | None:
        """An integer setting; `infinity` (as CouchDB writes unlimited) gives None."""
        raw = self.get(section, key)
        if raw is None:
            return default
        raw = raw.strip()
        if raw.lower() == "infinity":
            return None
        try:
            return int(raw)
        except ValueError:
            return default

    def section(self, section: str) -> dict[str, str]:
        out = dict(DEFAULTS.get(section, {}))
        if self._cp.has_section(section):
            out.update(self._cp.items(section))
        return out

    def sections(self) -> list[str]:
        """Every section with a value, from the defaults or the file."""
        return sorted(set(DEFAULTS) | set(self._cp.sections()))

    def has(self, section: str, key: str) -> bool:
        return self._cp.has_option(section, key) or key in DEFAULTS.get(section, {})

    def reload(self) -> None:
        """Read the file again (`POST /_node/_local/_config/_reload`)."""
        fresh = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
        fresh.optionxform = str
        if self.path and self.path.exists():
            fresh.read(self.path, encoding="utf-8")
        self._cp = fresh
        self.version += 1

    def set(self, section: str, key: str, value: str) -> None:
        if not self._cp.has_section(section):
            self._cp.add_section(section)
        self._cp.set(section, key, value)
        self.version += 1

    def delete(self, section: str, key: str) -> None:
        if self._cp.has_section(section):
            self._cp.remove_option(section, key)
        self.version += 1

    def save(self) -> None:
        """Write atomically (temp file + rename), readable only by the owner: it holds hashes."""
        if not self.path:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            self._cp.write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def ensure_generated(self) -> bool:
        """Record the values CouchDB generates on first start. True when something was added."""
        changed = False
        if not self._cp.has_option("couchdb", "uuid"):
            self.set("couchdb", "uuid", secrets.token_hex(16))
            changed = True
        if not self._cp.has_option("chttpd_auth", "secret"):
            self.set("chttpd_auth", "secret", secrets.token_hex(16))
            changed = True
        return changed
