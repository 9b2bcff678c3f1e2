"""Plain users for the state-machine tests of security and access: created in `_users`, and a
blocking request as any of them (hypothesis's state machines run synchronously)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request


def http(base: str, method: str, path: str, who: tuple[str, str] | None, body=None) -> tuple[int, object]:
    """(status, JSON body) of one request as `who` (name, password), or anonymous for None; a
    continuous feed's lines come as a list."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if who is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{who[0]}:{who[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    lines = [json.loads(line) for line in raw.splitlines() if line.strip()]
    if len(lines) > 1:  # a continuous feed
        return status, lines
    return status, json.loads(raw or b"null")


def password(name: str) -> str:
    return "pw-" + name


def create_users(server, users: dict[str, list[str]]) -> None:
    """Each user (name -> roles) in the server's `_users`, with `password(name)`."""
    admin = (server.user, server.password)
    for name, roles in users.items():
        status, body = http(server.base, "PUT", f"/_users/org.couchdb.user:{name}", admin,
                            {"name": name, "roles": roles, "password": password(name), "type": "user"})
        assert status == 201, body
