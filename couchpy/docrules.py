"""What a document may look like, and how an edit gets its revision id. Pure, no I/O.

CouchDB's rules: the body is a JSON object; ids beginning with `_` are reserved except `_design/`
and `_local/`; the only top-level fields beginning with `_` are CouchDB's own (`_id`, `_rev`,
`_deleted`, `_attachments`, `_revisions`, and a few read-only ones that are ignored on write).

Revision ids are `N-<32 hex>`: N is the parent's generation plus one, the hash CouchDB's
(couch_db:new_revid): the MD5 of the Erlang term `[Deleted, ParentPos, ParentHash, Body, Atts]`
in external term format, the body in its member order, `Atts` the `{Name, Type, Digest}` of each
attachment, last first. The same edit gets the same revision id on two couchpy nodes and on
CouchDB, so replicating it twice, or between the two, does not create a spurious conflict.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Callable

from . import etf
from .attachments.codec import inline_bytes
from .errors import BadRequest, DocValidation
from .revtree import parse_rev

# Special fields a client may send. The read-only ones are accepted and dropped, as CouchDB does.
WRITABLE_SPECIAL = {"_id", "_rev", "_deleted", "_attachments", "_revisions"}
IGNORED_SPECIAL = {"_revs_info", "_conflicts", "_deleted_conflicts", "_local_seq"}
# Fields the replicator records on `_replicator` documents; CouchDB keeps them in any database.
KEPT_SPECIAL = {
    "_replication_state", "_replication_state_time", "_replication_state_reason",
    "_replication_id", "_replication_stats",
    "_access",  # per-document access control; refused outside access databases by the write path
}


def validate_docid(docid: Any, max_length: int | None = None, allow_local: bool = False) -> str:
    if not isinstance(docid, str):
        raise BadRequest("Document id must be a string", error="illegal_docid")
    if docid == "":
        raise BadRequest("Document id must not be empty", error="illegal_docid")
    if max_length is not None and len(docid.encode("utf-8", "surrogatepass")) > max_length:
        raise BadRequest("Document id is too long", error="illegal_docid")
    try:
        docid.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BadRequest("Document id must be valid UTF-8", error="illegal_docid") from exc
    if docid.startswith("_"):
        if docid.startswith("_design/") and len(docid) > 8:
            return docid
        if allow_local and docid.startswith("_local/") and len(docid) > 7:
            return docid
        raise BadRequest("Only reserved document ids may start with underscore.", error="illegal_docid")
    return docid


def split_body(doc: dict) -> tuple[dict, bool]:
    """The stored body (user fields plus `_attachments` and kept specials) and the deleted flag.

    Rejects unknown special fields with 400 doc_validation, as CouchDB does.
    """
    body = {k: v for k, v in doc.items() if k[:1] != "_"}
    specials = len(doc) - len(body)
    # the common document has no special member but `_id` (and `_rev`): nothing more to look at
    if specials > ("_id" in doc) + ("_rev" in doc):
        # in the body's member order, as couch_doc:transfer_fields reads it: the first bad member
        # is the one reported
        revisions_seen = False
        for key, value in doc.items():
            if key[:1] != "_":
                continue
            if key == "_rev":
                if not revisions_seen and parse_rev(value) is None:
                    raise BadRequest("Invalid rev format")
            elif key == "_revisions":
                _check_revisions(value)
                revisions_seen = True  # a `_rev` after it is not read
            elif key == "_deleted":
                if not isinstance(value, bool):
                    raise DocValidation(f"Bad special document member: {key}")
            elif key == "_attachments":
                if not isinstance(value, dict):  # `null` too, as CouchDB reads it
                    raise DocValidation(f"Bad special document member: {key}")
                body[key] = value
            elif key in KEPT_SPECIAL:
                body[key] = value
            elif key not in WRITABLE_SPECIAL and key not in IGNORED_SPECIAL:
                raise DocValidation(f"Bad special document member: {key}")
        # kept specials stay where the body has them (its member order is hashed into a new revision id)
        body = {k: v for k, v in doc.items() if k in body}
    return body, doc.get("_deleted") is True


def check_members(doc: dict, max_id_length: int | None = None,
                  stored: Callable[[Any], bool] | None = None) -> str | None:
    """Check a document body's special members in the body's order, as couch_doc:transfer_fields
    reads them when a write arrives: the first bad one is the one reported, whatever it is
    (`{"_attachments": {"t": {}}, "_rev": "bad"}` is the attachment's fault,
    `{"_rev": "bad", "_id": 1}` the revision's). An inline attachment's data is decoded here, as
    couch_att:from_json does, and its entry keeps the bytes, so that the write decodes it only
    once (`codec.inline_bytes`: its `data` becomes equal text carrying them); its name is checked
    after the whole body (`attachments.hooks.check_names`).

    `stored`: whether an attachment entry is one the server itself made from data it already
    stored (a standalone attachment's write), passed by.
    Returns the revision the body names: `_rev`, or the newest of `_revisions` read before it
    (a `_rev` after `_revisions` is not read), None when it names none.
    """
    rev: str | None = None
    revisions_seen = False
    for key, value in doc.items():
        if key[:1] != "_":
            continue
        if key == "_id":
            validate_docid(value, max_id_length, allow_local=True)
        elif key == "_rev":
            if not revisions_seen:
                if parse_rev(value) is None:
                    raise BadRequest("Invalid rev format")
                rev = value
        elif key == "_revisions":
            _check_revisions(value)
            revisions_seen = True
            rev = f"{value['start']}-{value['ids'][0]}" if value["ids"] else None
        elif key == "_deleted":
            if not isinstance(value, bool):
                raise DocValidation(f"Bad special document member: {key}")
        elif key == "_attachments":
            _check_attachments(value, stored)
        elif key not in WRITABLE_SPECIAL and key not in IGNORED_SPECIAL and key not in KEPT_SPECIAL:
            raise DocValidation(f"Bad special document member: {key}")
    return rev


def _check_attachments(value: object, stored: Callable[[Any], bool] | None) -> None:
    """`_attachments` as couch_doc:transfer_fields and couch_att:from_json read it: an object
    (`null` too is refused); an entry that is not an object is passed by; a stub or an entry
    whose data follows (multipart) carries no data, any other must carry valid base64, whose
    bytes the entry keeps for the step that stores them (`codec.inline_bytes`)."""
    if not isinstance(value, dict):
        raise DocValidation("Bad special document member: _attachments")
    for name, entry in value.items():
        if (isinstance(entry, dict) and entry.get("stub") is not True and entry.get("follows") is not True
                and not (stored and stored(entry))):
            inline_bytes(entry, name)


def _check_revisions(value: object) -> None:
    """`_revisions`' shape, with CouchDB's reasons (couch_doc:transfer_fields)."""
    if not isinstance(value, dict):
        raise DocValidation("Bad special document member: _revisions")
    start, ids = value.get("start"), value.get("ids")
    if not isinstance(start, int) or isinstance(start, bool):
        raise DocValidation("_revisions.start isn't an integer.")
    if not isinstance(ids, list):
        raise DocValidation("_revisions.ids isn't a array.")
    if not all(isinstance(i, str) for i in ids):
        raise DocValidation("RevId isn't a string")


def _attachment_terms(body: dict) -> list:
    """`{Name, Type, Md5}` of each attachment, last first (couch_db:new_revid folds the list)."""
    atts = body.get("_attachments")
    if not isinstance(atts, dict):
        return []
    out = []
    for name, att in atts.items():
        if not isinstance(att, dict):
            continue
        digest = att.get("digest")
        md5 = base64.b64decode(digest[4:]) if isinstance(digest, str) and digest.startswith("md5-") else b""
        ctype = att.get("content_type")
        out.append((name, ctype if isinstance(ctype, str) else "application/octet-stream", md5))
    return out[::-1]


def _parent_hash(parent: str | None) -> int | bytes:
    """A revision's hash as CouchDB holds it: 32 hex digits as their 16 bytes, else the text."""
    if parent is None:
        return 0
    text = parent.split("-", 1)[1]
    if len(text) == 32:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    return text.encode("utf-8", "surrogatepass")


def new_rev(parent: str | None, deleted: bool, body: dict) -> str:
    """The revision id of an edit, as CouchDB 3.4.3 computes it for the same edit."""
    pos = int(parent.split("-", 1)[0]) if parent else 0
    content = {k: v for k, v in body.items() if k != "_attachments"} if "_attachments" in body else body
    term = [etf.Atom("true" if deleted else "false"), pos, _parent_hash(parent), content, _attachment_terms(body)]
    return f"{pos + 1}-{hashlib.md5(etf.term_to_binary(term)).hexdigest()}"


NEEDS_REV = "When `new_edits: false`, the document needs `_rev` or `_revisions` specified"


def revisions_path(doc: dict) -> list[str]:
    """The history given with a `new_edits=false` write, newest first.

    From `_revisions: {start, ids}` when present, else just `_rev`. As in CouchDB, `_revisions`
    wins over a `_rev` that disagrees with it (the document is stored at `_revisions`' head).
    """
    rev = doc.get("_rev")
    revs = doc.get("_revisions")
    if isinstance(revs, dict):
        start, ids = revs.get("start"), revs.get("ids")
        if not isinstance(start, int) or isinstance(start, bool) or not isinstance(ids, list) or not ids:
            raise BadRequest("Invalid _revisions")
        if not all(isinstance(i, str) and i and "\x00" not in i for i in ids) or start < len(ids):
            raise BadRequest("Invalid _revisions")
        return [f"{start - i}-{h}" for i, h in enumerate(ids)]
    if not isinstance(rev, str):
        raise BadRequest(NEEDS_REV)
    if parse_rev(rev) is None:
        raise BadRequest("Invalid rev format")
    return [rev]
