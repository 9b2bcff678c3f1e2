"""The node's conflict resolver: applies each database's conflict policy to documents in conflict.

A database opts in with a policy in its metadata (`conflict_policy`, set by `PUT /{db}/_conflict_policy`,
see couchpy.conflict_merge for the rules). One supervised background task per node follows the
by-sequence index of every open database that has a policy, as a `_changes` reader would, and for
each document with two or more non-deleted leaves writes, as `new_edits=true` edits, exactly what
a client resolving the conflict writes:

- the merged body as a new revision on the winning leaf (keeping the winner's attachments), then,
  once that is committed,
- a deletion (`{"_deleted": true}`) on every other non-deleted leaf.

The documents of one batch read from the by-sequence index are written together: one `_bulk_docs`
of their merged bodies, then one of their losers' deletions (two commits a batch).

So the losing revisions become deleted branches of the ordinary revision tree and any replica,
a plain CouchDB or PouchDB included, converges to the resolved document by replicating. The
resolution never runs inside the write transaction that made the conflict: the writer only commits,
and this task looks afterwards. Revision ids are a hash of (parent, body), so nodes that resolve
the same leaves write identical revisions and their resolutions do not conflict with each other.

A write that races a client edit fails for that document (409) and moves it in the by-sequence
index again, so the resolver meets it once more and retries with the new leaves. Where it has
read up to is kept in memory: after a restart, or a policy change, a database is read from the
start once (documents not in conflict are skipped without reading a body).
"""

from __future__ import annotations

import ast
import asyncio
import logging
from typing import Any, NamedTuple

from . import conflict_merge, revtree, scans
from .background import BackgroundTask
from .docinfo import DocInfo
from .errors import CouchError, NotFound
from .node import pinning_scope
from .query_language import canonical
from .views.manager import pool_for

log = logging.getLogger("couchpy.conflicts")

META_FIELD = "conflict_policy"
BATCH = 256  # documents read from the by-sequence index per step
IDLE_WAIT = 1.0  # seconds between looks when no database changed (the db-updates feed wakes it sooner)


def policy_of(db: Any) -> dict:
    return db.meta.get(META_FIELD) or {}


def live_leaves(info: DocInfo) -> list[str]:
    """The document's non-deleted leaves, winner first; two or more is a conflict to resolve."""
    return [rev for rev in revtree.leaves(info.tree) if not info.tree[rev][1]]


class Merge(NamedTuple):
    """One document's resolution: the merged body as an edit of the winning leaf, and the losers."""

    doc: dict
    losers: list[str]


class Resolver(BackgroundTask):
    """The conflict resolver of one node (started and stopped by the HTTP application)."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.seen: dict[str, tuple[str, int]] = {}  # db name -> (policy as JSON, seq read up to)
        self.resolved = 0  # documents resolved since start (tests and logs read it)

    async def _run(self) -> None:
        feed_seq = self.node.db_updates.seq
        while True:
            try:
                while await self.step():
                    await asyncio.sleep(0)  # a long backlog without conflicts awaits nothing else
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one failed look must not end conflict resolution
                log.exception("conflict resolution failed")
                await asyncio.sleep(IDLE_WAIT)
            feed_seq = await self.node.db_updates.wait(feed_seq, IDLE_WAIT)

    async def step(self) -> bool:
        """One batch for every open database with a policy and changes not read yet; True if
        there may be more to read."""
        more = False
        for db in self.node.open_dbs():
            if db.closed:
                continue
            policy = policy_of(db)
            if not policy:
                self.seen.pop(db.name, None)
                continue
            # a database deleted and created again under the same name starts from its beginning
            key = conflict_merge.canonical([policy, db.meta.get("created")])
            prev = self.seen.get(db.name)
            since = prev[1] if prev is not None and prev[0] == key else 0
            if db.update_seq <= since or self.node.fence_reason(db.name) is not None:
                continue  # nothing new, or no document writes now (a fence): looked at once lifted
            with pinning_scope():
                try:
                    db = self.node.get_db(db.name)  # pinned while resolving: the LRU keeps it open
                except NotFound:  # deleted meanwhile
                    continue
                since, full = await self.resolve_db(db, policy, since)
            self.seen[db.name] = (key, since)
            more = more or full
        return more

    async def resolve_db(self, db: Any, policy: dict, since: int) -> tuple[int, bool]:
        """Resolve the conflicts among the next BATCH changes after `since`; (seq read up to,
        whether the batch was full)."""
        start = since
        infos = list(scans.changes_since(db, since, limit=BATCH))
        await asyncio.sleep(0)  # requests are answered between batches of a long first read
        merges: list[Merge] = []
        for info in infos:
            if db.closed:
                break
            if len(live_leaves(info)) > 1:
                try:
                    merge = await self.merge_doc(db, policy, info.id)
                except CouchError as exc:
                    log.warning("conflict in %s/%s left unresolved: %s", db.name, info.id, exc.reason)
                    merge = None
                except Exception:  # noqa: BLE001 - one document must not stop the database's resolution
                    log.exception("conflict in %s/%s left unresolved", db.name, info.id)
                    merge = None
                if merge is not None:
                    merges.append(merge)
            since = info.seq
        if merges and not db.closed:
            try:
                await self.write(db, merges)
            except CouchError as exc:
                # refused as a whole (a fence set since the batch was read): the batch is read
                # again once the fence is lifted, as nothing else would bring these documents back
                log.warning("conflicts of %d documents in %s not resolved yet: %s", len(merges), db.name, exc.reason)
                return start, False
        return since, len(infos) == BATCH

    async def merge_doc(self, db: Any, policy: dict, docid: str) -> Merge | None:
        """What resolves one document's conflict as a client would; None if nothing to write."""
        info = db.get_docinfo(docid)
        if info is None:
            return None
        revs = live_leaves(info)
        if len(revs) < 2:
            return None
        leaves = []
        for rev in revs:
            body = db.read_body(docid, rev)
            if body is None:  # a leaf without a body cannot be merged; leave the document alone
                log.warning("conflict in %s/%s: leaf %s has no body", db.name, docid, rev)
                return None
            leaves.append((rev, body))
        try:
            merged = await self.merged_body(db, policy, docid, leaves)
        except (CouchError, ValueError) as exc:
            log.warning("conflict in %s/%s left unresolved: %s", db.name, docid, getattr(exc, "reason", exc))
            return None
        winner, winner_body = leaves[0]
        if "_attachments" in winner_body:
            merged["_attachments"] = {
                name: {**{k: v for k, v in att.items() if k not in ("data", "follows")}, "stub": True}
                for name, att in winner_body["_attachments"].items()
            }
        return Merge({"_id": docid, "_rev": winner, **merged}, [rev for rev, _ in leaves[1:]])

    async def write(self, db: Any, merges: list[Merge]) -> int:
        """Write the merged bodies, then delete the losers of those that were written; how many
        documents were resolved.

        The merged bodies first: the edits of a `_bulk_docs` are not all-or-nothing, and a client
        that edits the winner between our read and our write makes that edit a conflict. Had the
        losers' deletions gone in with it, they would have committed while the merge did not, and
        what only the losers held would be gone. Deleted only once the merge holds them, they
        cannot be lost; a deletion that fails leaves a conflict to retry. Each of the two is one
        request for the whole batch of documents (one commit each), not two per document."""
        results = await db.bulk_docs([m.doc for m in merges])
        written = []
        for merge, result in zip(merges, results):
            docid = merge.doc["_id"]
            if "error" in result:
                # a client edited the document meanwhile: it is in the feed again and is retried
                # (or a validate_doc_update refused the merge)
                log.info("conflict in %s/%s: resolution not written (%s)", db.name, docid, result["error"])
                continue
            written.append(merge)
            log.info("resolved conflict in %s/%s: %d leaves into %s", db.name, docid, len(merge.losers) + 1,
                     result["rev"])
        deletions = [{"_id": m.doc["_id"], "_rev": rev, "_deleted": True} for m in written for rev in m.losers]
        if deletions:
            await db.bulk_docs(deletions)
        self.resolved += len(written)
        return len(written)

    async def merged_body(self, db: Any, policy: dict, docid: str, leaves: list[tuple[str, dict]]) -> dict:
        if policy["type"] != conflict_merge.FUNCTION:
            return conflict_merge.merge(policy, leaves)
        try:
            ddoc = db.get(policy["ddoc"])
        except NotFound:
            raise ValueError(f"design document {policy['ddoc']} not found") from None
        src = ddoc.get("resolve_conflicts")
        if not isinstance(src, str) or not src.strip():
            raise ValueError(f"{policy['ddoc']} has no resolve_conflicts function")
        language = canonical(ddoc.get("language") or "javascript")
        pool = pool_for(self.node)
        pool.check_language(language)
        docs = conflict_merge.function_input(docid, leaves)
        loop = asyncio.get_running_loop()
        merged, _ = await loop.run_in_executor(None, pool.update, language, as_update_function(language, src),
                                               None, {"docs": docs})
        return conflict_merge.function_output(merged)


def as_update_function(language: str, src: str) -> str:
    """`resolve_conflicts(docs)` wrapped as an update function `(doc, req) -> [merged, ""]`, so it
    runs in the query-server workers (sandbox, memory and time limits) that update handlers use.
    Its author is a database admin, who may write any design function anyway."""
    if language == "python":
        try:
            tree = ast.parse(src.strip() + "\n")
        except SyntaxError as exc:
            raise ValueError(f"resolve_conflicts: SyntaxError: {exc.msg}") from None
        names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
        if not names:
            raise ValueError("resolve_conflicts does not define a function")
        return f"{src.strip()}\n\ndef __couchpy_resolve(doc, req):\n    return ({names[-1]}(req['docs']), None)\n"
    # the response is an empty string: an update function's response must be a string or an
    # object (couchjs; http_api/updates.py), and nothing reads this one
    return "function (doc, req) { return [(" + src.strip() + ")(req.docs), '']; }"
