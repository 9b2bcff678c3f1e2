"""Revision trees: the history of every document, as CouchDB keeps it.

Each edit of a document makes a revision `N-<hash>`, where N is the edit's depth (generation) and the
hash identifies the edit. A revision names its parent, so the revisions of a document form a tree:
usually one straight line, branching when two nodes edit the same revision concurrently and then
replicate. For example:

        1-a ── 2-b ── 3-c          edits on node X
                 └─── 3-d          an edit of 2-b made on node Y, replicated to X

Here 3-c and 3-d are *leaves*; one is the *winner* (what a plain GET returns) and the other a
*conflict*. The winner is chosen deterministically so that every node picks the same one without
talking to the others: a non-deleted leaf beats a deleted one, then the deeper leaf wins, then the
greater revision id string (so 3-d beats 3-c).

Representation. A tree is a flat mapping `rev -> (parent_rev | None, deleted)`. A parent of None means
a root: either the first edit, or a revision whose ancestors were *stemmed* away (only the newest
`revs_limit` revisions of each branch are kept). The flat form makes merging a plain union, so
merge is commutative, associative and idempotent by construction -- the property replication
convergence rests on. When the same revision arrives with and without a known parent, the known
parent wins (a stemmed copy knows less, not something different).

This module is pure: no I/O, no clock. Bodies of revisions live elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# rev -> (parent rev or None, deleted flag)
Tree = dict[str, tuple[str | None, bool]]


def rev_pos(rev: str) -> int:
    """The generation N of `N-hash`."""
    return int(rev.split("-", 1)[0])


def rev_hash(rev: str) -> str:
    return rev.split("-", 1)[1]


def parse_rev(rev: object) -> tuple[int, str] | None:
    """(pos, hash) of a well-formed revision string, else None. The hash may be empty: CouchDB
    stores a replicated `1-` as it is (PouchDB's suite sends one)."""
    if not isinstance(rev, str) or "-" not in rev:
        return None
    pos, _, h = rev.partition("-")
    if not (pos.isascii() and pos.isdigit()) or "\x00" in h or len(rev) > 200:
        return None
    return int(pos), h


def _merge_node(a: tuple[str | None, bool], b: tuple[str | None, bool]) -> tuple[str | None, bool]:
    pa, da = a
    pb, db = b
    if pa is None:
        parent = pb
    elif pb is None or pa == pb:
        parent = pa
    else:  # contradictory claims: pick deterministically so merge stays commutative
        parent = min(pa, pb)
    return parent, da or db


def merge(a: Mapping[str, tuple[str | None, bool]], b: Mapping[str, tuple[str | None, bool]]) -> Tree:
    """Union of two trees of the same document."""
    out: Tree = dict(a)
    for rev, node in b.items():
        mine = out.get(rev)
        out[rev] = node if mine is None else _merge_node(mine, node)
    return out


def path_tree(path: list[str], deleted: bool) -> Tree:
    """The tree of one linear history, newest first: [3-c, 2-b, 1-a]. Only the newest is deleted."""
    tree: Tree = {}
    for i, rev in enumerate(path):
        parent = path[i + 1] if i + 1 < len(path) else None
        tree[rev] = (parent, deleted if i == 0 else False)
    return tree


def add_path(tree: Mapping[str, tuple[str | None, bool]], path: list[str], deleted: bool) -> Tree:
    return merge(tree, path_tree(path, deleted))


def children_map(tree: Mapping[str, tuple[str | None, bool]]) -> dict[str, list[str]]:
    kids: dict[str, list[str]] = {}
    for rev, (parent, _) in tree.items():
        if parent is not None and parent in tree:
            kids.setdefault(parent, []).append(rev)
    return kids


def _winner_key(tree: Mapping[str, tuple[str | None, bool]], rev: str) -> tuple[bool, int, str]:
    pos, _, h = rev.partition("-")  # one split: this runs for every leaf of every write
    return (not tree[rev][1], int(pos), h)


def leaf_set(tree: Mapping[str, tuple[str | None, bool]]) -> set[str]:
    """All leaf revisions, unordered: cheaper than `leaves` where the order does not matter."""
    parents = {p for p, _ in tree.values() if p is not None}
    return {rev for rev in tree if rev not in parents}


def leaves(tree: Mapping[str, tuple[str | None, bool]]) -> list[str]:
    """All leaf revisions, best first (the first is the winner)."""
    parents = {p for p, _ in tree.values() if p is not None}
    found = [rev for rev in tree if rev not in parents]
    found.sort(key=lambda r: _winner_key(tree, r), reverse=True)
    return found


def winner(tree: Mapping[str, tuple[str | None, bool]]) -> str:
    if len(tree) == 1:
        return next(iter(tree))
    parents = {p for p, _ in tree.values() if p is not None}
    return max((r for r in tree if r not in parents), key=lambda r: _winner_key(tree, r))


def is_deleted(tree: Mapping[str, tuple[str | None, bool]], rev: str) -> bool:
    return tree[rev][1]


def conflicts(tree: Mapping[str, tuple[str | None, bool]]) -> list[str]:
    """Non-deleted leaves other than the winner."""
    ls = leaves(tree)
    return [r for r in ls[1:] if not tree[r][1]]


def deleted_conflicts(tree: Mapping[str, tuple[str | None, bool]]) -> list[str]:
    ls = leaves(tree)
    return [r for r in ls[1:] if tree[r][1]]


def ancestry(tree: Mapping[str, tuple[str | None, bool]], rev: str) -> list[str]:
    """The path from `rev` back to its oldest kept ancestor, newest first."""
    out = []
    seen = set()
    cur: str | None = rev
    while cur is not None and cur in tree and cur not in seen:
        seen.add(cur)
        out.append(cur)
        cur = tree[cur][0]
    return out


def revisions_field(tree: Mapping[str, tuple[str | None, bool]], rev: str, limit: int | None = None) -> dict:
    """CouchDB's `_revisions`: {"start": N, "ids": [hash, ...]} for the ancestry of rev."""
    path = ancestry(tree, rev)
    if limit is not None:
        path = path[:limit]
    # A gap (stemmed/contradictory parent) would break the consecutive numbering: cut there.
    ids = []
    expect = rev_pos(rev)
    for r in path:
        if rev_pos(r) != expect:
            break
        ids.append(rev_hash(r))
        expect -= 1
    return {"start": rev_pos(rev), "ids": ids}


def stem(tree: Mapping[str, tuple[str | None, bool]], limit: int) -> Tree:
    """Keep the newest `limit` revisions of each branch (counted from each leaf)."""
    if len(tree) <= limit:  # no branch can be longer than the whole tree
        return dict(tree)
    keep: set[str] = set()
    for leaf in leaves(tree):
        for rev in ancestry(tree, leaf)[:limit]:
            keep.add(rev)
    if len(keep) == len(tree):
        return dict(tree)
    out: Tree = {}
    for rev in keep:
        parent, deleted = tree[rev]
        out[rev] = (parent if parent in keep else None, deleted)
    return out


def purge(tree: Mapping[str, tuple[str | None, bool]], revs: Iterable[str]) -> tuple[Tree, list[str]]:
    """Remove the leaves named in `revs` (CouchDB's couch_key_tree:remove_leafs); the new tree and
    the leaves removed, in the order `revs` names them.

    Only leaves are purged: a named revision that is not a leaf, or unknown, is left alone (CouchDB
    answers it as not purged). The tree that remains is the union of the ancestries of the
    remaining leaves, so a purged branch goes up to where it joins another one, and no revision
    becomes a leaf by a purge. Purging every leaf leaves an empty tree (the document is gone).
    """
    current = leaf_set(tree)
    purged: list[str] = []
    for rev in revs:
        if rev in current and rev not in purged:
            purged.append(rev)
    if not purged:
        return dict(tree), []
    keep: set[str] = set()
    for leaf in current.difference(purged):
        keep.update(ancestry(tree, leaf))
    return {rev: tree[rev] for rev in tree if rev in keep}, purged


def missing(tree: Mapping[str, tuple[str | None, bool]], revs: Iterable[str]) -> list[str]:
    """The revisions of `revs` this tree does not have (for _revs_diff)."""
    return [r for r in revs if r not in tree]


def possible_ancestors(tree: Mapping[str, tuple[str | None, bool]], rev: str) -> list[str]:
    """Leaves that could be ancestors of a missing `rev` (those of a lower generation)."""
    try:
        pos = rev_pos(rev)
    except ValueError:
        return []
    return [leaf for leaf in leaves(tree) if rev_pos(leaf) < pos]


def latest(tree: Mapping[str, tuple[str | None, bool]], rev: str) -> list[str]:
    """The leaves descending from `rev` (itself when it is a leaf): for `latest=true`."""
    kids = children_map(tree)
    out, stack = [], [rev]
    while stack:
        cur = stack.pop()
        ch = kids.get(cur)
        if ch:
            stack.extend(ch)
        else:
            out.append(cur)
    return out


def encode(tree: Mapping[str, tuple[str | None, bool]]) -> list:
    """JSON-able form: [[rev, parent, deleted], ...]."""
    return [[rev, p, d] for rev, (p, d) in tree.items()]


def decode(data: list) -> Tree:
    return {rev: (p, bool(d)) for rev, p, d in data}
