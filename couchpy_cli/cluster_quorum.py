"""Write and read quorum over a database's copies, on top of the cluster's replication.

A write: the node that took it reads the just-written revisions back (with their histories and
attachment bodies, as a replication reads them) and writes them straight to each other copy with
`_bulk_docs` `new_edits=false` — exactly what the continuous pull would do a moment later, so the
two never disagree; a copy that answers without an error for a document holds it (the peer commits
before it answers). The pushes run side by side; the answer waits until enough copies hold every
write or the request timeout passes, and the pushes still running go on in the background (they
only speed the copies up).

A read with `r` > 1: the node asks `r - 1` other copies for the document's leaves, writes the ones
it lacks into its own copy (`new_edits=false` again) and answers from the merged tree — the newest
winner any of them knew — and gives the copies that were behind what they lacked (read repair).

Copies known to be down (the agent's `/_up` probe) are not waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp

from couchpy import jsonutil
from couchpy.cluster_config import ClusterNode
from couchpy.errors import CouchError, NotFound
from replicator.local_endpoint import LocalEndpoint

if TYPE_CHECKING:
    from .cluster_agent import ClusterAgent

log = logging.getLogger("couchpy.cluster")

JSON = {"Content-Type": "application/json", "Accept": "application/json"}
Key = tuple[str, str]  # (document id, revision)
# a peer that cannot be reached, answers too late, or answers what is not JSON (CouchError:
# jsonutil's refusal): it holds nothing as far as this request knows
UNREACHABLE = (aiohttp.ClientError, asyncio.TimeoutError, ValueError, CouchError)


def _doc_path(docid: str) -> str:
    if docid.startswith("_design/"):
        return "_design/" + quote(docid[len("_design/"):], safe="")
    return quote(docid, safe="")


class Quorum:
    def __init__(self, agent: ClusterAgent):
        self.agent = agent
        self.timeout = agent.cdef.request_timeout
        self._session: aiohttp.ClientSession | None = None
        self._background: set[asyncio.Task] = set()

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=min(self.timeout, 2.0)),
                json_serialize=lambda o: jsonutil.dumps(o).decode(), cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def _other_copies(self, name: str) -> list[ClusterNode]:
        """The other live copies of `name`, in placement order."""
        rec = self.agent.record(name)
        nodes = rec["nodes"] if rec else []
        return [self.agent.cdef.node(n) for n in nodes if n != self.agent.me.name and self.agent.live.get(n)]

    def _keep(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # ---- writes ----------------------------------------------------------------------------
    async def replicate_write(self, name: str, keys: list[Key], w: int) -> dict[Key, int]:
        """How many copies hold each written revision (this one counts), waiting at most the
        request timeout for `w` of them."""
        acks = dict.fromkeys(keys, 1)
        peers = self._other_copies(name)
        if w <= 1 or not keys or not peers:
            return acks
        docs = await LocalEndpoint(self.agent.node, name).bulk_get(
            [{"id": docid, "rev": rev} for docid, rev in keys], attachments=True)
        pending = {self._keep(self._push(peer, name, docs, keys)) for peer in peers}
        deadline = time.monotonic() + self.timeout
        while pending and min(acks.values()) < w:
            done, pending = await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()),
                                               return_when=asyncio.FIRST_COMPLETED)
            if not done:
                break  # timed out: what holds the writes now is the answer
            for task in done:
                for key in task.result():
                    acks[key] += 1
        return acks

    async def _push(self, peer: ClusterNode, name: str, docs: list[dict[str, Any]], keys: list[Key]) -> set[Key]:
        """The written revisions the peer's copy holds after receiving them."""
        url = f"{peer.url}/{quote(name, safe='')}/_bulk_docs"
        try:
            async with self._sess().post(url, data=jsonutil.dumps({"docs": docs, "new_edits": False}),
                                         headers=JSON) as resp:
                body = jsonutil.loads(await resp.read() or b"null")
                if resp.status != 201 or not isinstance(body, list):
                    log.info("pushing writes to %s's copy of a database: %s", peer.name, resp.status)
                    return set()
        except UNREACHABLE as exc:
            log.info("pushing writes to %s: %s", peer.name, type(exc).__name__)
            return set()
        failed = {row.get("id") for row in body if isinstance(row, dict) and "error" in row}
        return {key for key in keys if key[0] not in failed}

    # ---- reads -----------------------------------------------------------------------------
    async def merge_read(self, name: str, docid: str, r: int) -> None:
        """Bring into this copy every leaf of `docid` that `r - 1` other copies hold (bounded by the
        request timeout), and give those copies the leaves they lack."""
        peers = self._other_copies(name)[: max(r - 1, 0)]
        if not peers:
            return
        try:
            db = self.agent.node.get_db(name)
        except NotFound:
            return
        tasks = [asyncio.ensure_future(self._leaves(peer, name, docid)) for peer in peers]
        done, pending = await asyncio.wait(tasks, timeout=self.timeout)
        for task in pending:
            task.cancel()
        theirs: dict[str, dict[str, dict[str, Any]]] = {}  # peer -> rev -> doc
        for peer, task in zip(peers, tasks, strict=True):
            if task in done and task.result() is not None:
                theirs[peer.name] = task.result()
        lacking = sorted({rev for leaves in theirs.values() for rev in leaves})
        missing = set(db.revs_diff({docid: lacking}).get(docid, {}).get("missing", [])) if lacking else set()
        for peer in peers:  # each missing leaf from the first copy that has it
            wanted = sorted(missing & set(theirs.get(peer.name, ())))
            if wanted:
                fetched = await self._fetch(peer, name, docid, wanted)
                if fetched:
                    await db.bulk_docs(fetched, new_edits=False)
                missing -= {doc["_rev"] for doc in fetched}
        mine = [row["ok"]["_rev"] for row in db.open_revs(docid, "all") if "ok" in row]
        for peer in peers:
            if peer.name in theirs and (behind := sorted(set(mine) - set(theirs[peer.name]))):
                self._keep(self._repair(peer, name, docid, behind))

    async def _leaves(self, peer: ClusterNode, name: str, docid: str) -> dict[str, dict[str, Any]] | None:
        """The peer's leaves of `docid` (rev -> body without attachment data), None if unreachable."""
        url = f"{peer.url}/{quote(name, safe='')}/{_doc_path(docid)}"
        try:
            async with self._sess().get(url, params={"open_revs": "all", "revs": "true"},
                                        headers={"Accept": "application/json"}) as resp:
                if resp.status == 404:
                    return {}
                rows = jsonutil.loads(await resp.read()) if resp.status == 200 else None
        except UNREACHABLE:
            return None
        if not isinstance(rows, list):
            return None  # refused or not understood: nothing known of that copy
        return {row["ok"]["_rev"]: row["ok"] for row in rows if isinstance(row, dict) and "ok" in row}

    async def _fetch(self, peer: ClusterNode, name: str, docid: str, revs: list[str]) -> list[dict[str, Any]]:
        """The revisions with their histories and attachment bodies, to be written here."""
        url = f"{peer.url}/{quote(name, safe='')}/{_doc_path(docid)}"
        params = {"open_revs": jsonutil.dumps(revs).decode(), "revs": "true", "attachments": "true"}
        with contextlib.suppress(*UNREACHABLE):
            async with self._sess().get(url, params=params, headers={"Accept": "application/json"}) as resp:
                if resp.status == 200:
                    rows = jsonutil.loads(await resp.read())
                    return [row["ok"] for row in rows if isinstance(row, dict) and "ok" in row]
        return []

    async def _repair(self, peer: ClusterNode, name: str, docid: str, revs: list[str]) -> None:
        docs = await LocalEndpoint(self.agent.node, name).bulk_get(
            [{"id": docid, "rev": rev} for rev in revs], attachments=True)
        await self._push(peer, name, docs, [(docid, rev) for rev in revs])
