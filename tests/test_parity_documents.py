"""Document endpoints where couchpy used to answer otherwise than CouchDB 3.4.3: each case runs
against both (same requests, same asserted answer)."""

from __future__ import annotations

import json

import pytest

from couchpy import docrules

from tests.parity import pdb, peer, put_doc  # noqa: F401  (fixtures)


async def test_revs_diff_refuses_a_malformed_revision(peer, pdb):
    async with peer.post(f"/{pdb}/_revs_diff", json={"d": ["junk"]}) as r:
        assert r.status == 400
        assert await r.json() == {"error": "bad_request", "reason": "Invalid rev format"}


@pytest.mark.parametrize("bad", [None, 1, ["1-abc"]])
async def test_revs_diff_refuses_a_revision_that_is_no_string(client, db, bad):
    # CouchDB answers these with a 500 (function_clause); they are the client's error
    for path in ("_revs_diff", "_missing_revs"):
        async with client.post(f"/{db}/{path}", json={"d": [bad]}) as r:
            assert r.status == 400
            assert await r.json() == {"error": "bad_request", "reason": "Invalid rev format"}


@pytest.mark.parametrize("docid", ["d", "_design/d"])
async def test_a_tombstone_is_no_revision_to_edit(peer, pdb, docid):
    rev = await put_doc(peer, pdb, docid, {"a": 1})
    async with peer.delete(f"/{pdb}/{docid}", params={"rev": rev}) as r:
        tomb = (await r.json())["rev"]
    async with peer.put(f"/{pdb}/{docid}", json={"_rev": tomb, "a": 2}) as r:
        assert r.status == 409
        assert await r.json() == {"error": "conflict", "reason": "Document update conflict."}
    async with peer.post(f"/{pdb}/_bulk_docs", json={"docs": [
            {"_id": docid, "_rev": tomb, "a": 3}, {"_id": docid, "_rev": tomb, "_deleted": True}]}) as r:
        assert await r.json() == [{"id": docid, "error": "conflict", "reason": "Document update conflict."}] * 2
    # recreating without a rev continues the tombstone
    async with peer.put(f"/{pdb}/{docid}", json={"a": 4}) as r:
        assert r.status == 201
        assert (await r.json())["rev"].startswith("3-")


@pytest.mark.parametrize("new_edits", ["false", "true"])
async def test_if_match_must_agree_with_the_body_rev(peer, pdb, new_edits):
    await put_doc(peer, pdb, "e", {"a": 1})
    async with peer.put(f"/{pdb}/e", params={"new_edits": new_edits}, json={"_rev": "5-aaa", "a": 1},
                        headers={"If-Match": '"5-bbb"'}) as r:
        assert r.status == 400
        assert await r.json() == {"error": "bad_request", "reason": "Document rev and etag have different values"}
    async with peer.get(f"/{pdb}/e", params={"open_revs": "all"}, headers={"Accept": "application/json"}) as r:
        assert [row["ok"]["_rev"][:2] for row in await r.json()] == ["1-"]


async def test_local_documents_keep_no_revisions(peer, pdb):
    url = f"/{pdb}/_local/l"

    async def put(body, **kw):
        async with peer.put(url, json=body, **kw) as r:
            return r.status, await r.json()

    assert await put({"a": 1}) == (201, {"ok": True, "id": "_local/l", "rev": "0-1"})
    assert await put({"a": 2}) == (201, {"ok": True, "id": "_local/l", "rev": "0-1"})
    assert await put({"a": 3, "_rev": "0-7"}) == (201, {"ok": True, "id": "_local/l", "rev": "0-8"})
    assert await put({"a": 4}, params={"rev": "0-4"}) == (201, {"ok": True, "id": "_local/l", "rev": "0-5"})
    assert await put({"a": 5, "_rev": "junk"}) == (400, {"error": "bad_request", "reason": "Invalid rev format"})
    async with peer.get(url) as r:
        assert await r.json() == {"_id": "_local/l", "_rev": "0-5", "a": 4}
    for rev in ("0-5", "3-zzz"):
        async with peer.get(url, params={"rev": rev}) as r:
            assert (r.status, await r.json()) == (404, {"error": "not_found", "reason": "missing"})
    async with peer.post(f"/{pdb}", json={"_id": "_local/l", "b": 1}) as r:
        assert (r.status, await r.json()) == (201, {"ok": True, "id": "_local/l", "rev": "0-1"})
    async with peer.delete(url) as r:
        assert (r.status, await r.json()) == (200, {"ok": True, "id": "_local/l", "rev": "0-0"})
    async with peer.delete(url) as r:
        assert (r.status, await r.json()) == (404, {"error": "not_found", "reason": "missing"})
    await put({"a": 1})
    async with peer.delete(url, params={"rev": "9-9"}) as r:
        assert (r.status, await r.json()) == (200, {"ok": True, "id": "_local/l", "rev": "0-0"})
    async with peer.post(f"/{pdb}/_bulk_docs", json={"docs": [{"_id": "_local/gone", "_deleted": True}]}) as r:
        assert await r.json() == [{"ok": True, "id": "_local/gone", "rev": "0-0"}]


async def test_local_rev_of_another_generation_is_refused(client, db):
    # CouchDB answers 500 {"error":"error"} for a well-formed rev that is not 0-N
    for rev in ("3-abc", "0-abc"):
        async with client.put(f"/{db}/_local/l", json={"_rev": rev}) as r:
            assert (r.status, await r.json()) == (400, {"error": "bad_request", "reason": "Invalid rev format"})


@pytest.mark.parametrize("accept", [None, "*/*", "multipart/*", "application/json, multipart/mixed"])
async def test_open_revs_answer_multipart_unless_json_is_asked_for(peer, pdb, accept):
    rev = await put_doc(peer, pdb, "a", {"v": 1})
    headers = {} if accept is None else {"Accept": accept}
    for open_revs in ("all", json.dumps([rev])):
        async with peer.get(f"/{pdb}/a", params={"open_revs": open_revs}, headers=headers,
                            skip_auto_headers=["Accept"] if accept is None else ()) as r:
            assert r.status == 200
            assert r.content_type == "multipart/mixed"
            body = await r.read()
            assert b'"_id":"a"' in body and rev.encode() in body


async def test_open_revs_in_json_when_asked_for_and_empty_list_is_a_plain_read(peer, pdb):
    rev = await put_doc(peer, pdb, "a", {"v": 1})
    async with peer.get(f"/{pdb}/a", params={"open_revs": "all"}, headers={"Accept": "application/json"}) as r:
        assert r.content_type == "application/json"
        assert await r.json() == [{"ok": {"_id": "a", "_rev": rev, "v": 1}}]
    async with peer.get(f"/{pdb}/a", params={"open_revs": "[]"}) as r:
        assert r.content_type == "application/json"
        assert r.headers["ETag"] == f'"{rev}"'
        assert await r.json() == {"_id": "a", "_rev": rev, "v": 1}


@pytest.mark.parametrize("params", [{}, {"revs": "true"}, {"rev": None}, {"attachments": "true"}])
async def test_if_none_match_with_the_current_revision_is_304(peer, pdb, params):
    rev = await put_doc(peer, pdb, "a", {"v": 1})
    params = {k: (rev if v is None else v) for k, v in params.items()}
    async with peer.get(f"/{pdb}/a", params=params, headers={"If-None-Match": f'"{rev}"'}) as r:
        assert r.status == 304
        assert r.headers["ETag"] == f'"{rev}"'
    async with peer.head(f"/{pdb}/a", params=params, headers={"If-None-Match": f'"{rev}"'}) as r:
        assert r.status == 304


LOCATIONS = [
    ("_design/aé", "_design%2Fa%C3%A9"),
    ("_local/lé", "_local%2Fl%C3%A9"),
    ("été", "%C3%A9t%C3%A9"),
    ("a/b", "a%2Fb"),
    ("x~y:z (1)!*'", "x%7Ey:z%20%281%29%21%2A%27"),
    ("_design/p%t", "_design%2Fp%25t"),
]


@pytest.mark.parametrize("docid,encoded", LOCATIONS)
async def test_location_is_absolute_and_percent_encoded(peer, pdb, docid, encoded):
    async with peer.post(f"/{pdb}", json={"_id": docid}) as r:
        assert r.status == 201, await r.text()
        assert r.headers["Location"] == f"{peer.base}/{pdb}/{encoded}"
        rev = (await r.json())["rev"]
    async with peer.post(f"/{pdb}/_bulk_docs", json={"docs": [{"_id": docid, "_deleted": True, "_rev": rev}]}):
        pass
    async with peer.put(f"/{pdb}/{encoded}", json={"v": 1}) as r:
        assert r.status == 201, await r.text()
        assert r.headers["Location"] == f"{peer.base}/{pdb}/{encoded}"


@pytest.mark.parametrize("docid", ["x", "_local/x"])
async def test_a_replicated_write_needs_a_rev(peer, pdb, docid):
    reason = {"error": "bad_request",
              "reason": "When `new_edits: false`, the document needs `_rev` or `_revisions` specified"}
    async with peer.put(f"/{pdb}/{docid}", params={"new_edits": "false"}, json={"a": 1}) as r:
        assert (r.status, await r.json()) == (400, reason)
    async with peer.post(f"/{pdb}/_bulk_docs", json={"new_edits": False, "docs": [{"_id": docid}]}) as r:
        assert (r.status, await r.json()) == (400, reason)


NEGATIVE_ZEROS = b'{"a":-0.0,"b":[-0.0e3,{"c":-0E-2}],"d":-1e-400,"e":-0,"f":-1e-320,"-0.0":"-0.0"}'
UNSIGNED = b'{"a":0.0,"b":[0.0,{"c":0.0}],"d":0.0,"e":0,"f":-1e-320,"-0.0":"-0.0"}'


async def test_a_negative_zero_is_stored_with_its_sign_and_read_as_zero(peer, pdb):
    """CouchDB hashes a parsed -0.0 into the revision id with its sign, but writes it back as 0.0
    wherever the document is read: a document, a `_local` one, a `_bulk_docs` row, a feed."""
    headers = {"Content-Type": "application/json"}
    async with peer.put(f"/{pdb}/z", data=NEGATIVE_ZEROS, headers=headers) as r:
        assert r.status == 201
        rev = (await r.json())["rev"]
    assert rev == "1-87f45f004c55c748af646e63ab612922"
    assert rev != docrules.new_rev(None, False, json.loads(UNSIGNED))  # the signs are hashed
    async with peer.put(f"/{pdb}/_local/z", data=NEGATIVE_ZEROS, headers=headers) as r:
        assert r.status == 201
    async with peer.post(f"/{pdb}/_bulk_docs", data=b'{"docs":[{"_id":"y","v":-0.0}]}', headers=headers) as r:
        assert r.status == 201
    for path, prefix in ((f"/{pdb}/z", b'{"_id":"z","_rev":"' + rev.encode() + b'",'),
                         (f"/{pdb}/_local/z", b'{"_id":"_local/z","_rev":"0-1",')):
        async with peer.get(path) as r:
            assert await r.read() == prefix + UNSIGNED[1:] + b"\n"
        async with peer.head(path) as r:
            assert int(r.headers["Content-Length"]) == len(prefix + UNSIGNED[1:] + b"\n")
    async with peer.get(f"/{pdb}/_all_docs", params={"include_docs": "true", "key": '"y"'}) as r:
        assert b'"v":0.0}' in await r.read()
    async with peer.post(f"/{pdb}/_index", json={"index": {"fields": ["a"]}, "name": "a"}) as r:
        assert r.status == 200
    for selector in ({"a": 0}, {"_id": "z"}):  # through the index on `a`, and through _all_docs
        async with peer.post(f"/{pdb}/_find", json={"selector": selector}) as r:
            assert b'{"_id":"z","_rev":"' + rev.encode() + b'",' + UNSIGNED[1:] in await r.read()


async def test_a_revision_made_from_a_stored_body_hashes_its_negative_zeros(peer, pdb):
    """An edit that makes a revision from the stored body (COPY, an attachment added or removed
    through `/{db}/{doc}/{att}`) hashes the body with the signs it was sent with, as CouchDB
    hashes its stored term; only what is read out says 0.0. So a COPY of a first revision gets
    the source's revision id."""
    headers = {"Content-Type": "application/json"}
    async with peer.put(f"/{pdb}/z", data=NEGATIVE_ZEROS, headers=headers) as r:
        rev = (await r.json())["rev"]
    async with peer.request("COPY", f"/{pdb}/z", headers={"Destination": "c"}) as r:
        assert r.status == 201
        assert (await r.json())["rev"] == rev
    async with peer.put(f"/{pdb}/z/a.txt", params={"rev": rev}, data=b"hi",
                        headers={"Content-Type": "text/plain"}) as r:
        assert r.status == 201
        with_att = (await r.json())["rev"]
    async with peer.delete(f"/{pdb}/z/a.txt", params={"rev": with_att}) as r:
        assert r.status == 200
        without = (await r.json())["rev"]
    # as CouchDB 3.4.3 answered (asked directly)
    assert (with_att, without) == ("2-522bd83d3338bf2b3af30951f7c401c6", "3-1844e72a2755911a8f662e9a21daed29")
    async with peer.get(f"/{pdb}/z") as r:
        assert await r.read() == b'{"_id":"z","_rev":"' + without.encode() + b'",' + UNSIGNED[1:] + b"\n"


FLOATS = (b'{"v":[1e+20,1e21,1.5e16,123456789012345678.0,1e15,1e-5,1e-6,0.000001234,1e-7,0.1,1E2,'
          b'1.7976931348623157e308,-1e20,9007199254740993.0,1e100,12345678901234567890123],"s":"1e+16"}')
# as CouchDB 3.4.3 answered it (asked directly): JavaScript's number text, ".0" on whole numbers
FLOATS_READ = (b'{"v":[100000000000000000000.0,1e+21,15000000000000000.0,123456789012345680.0,'
               b'1000000000000000.0,0.00001,0.000001,0.000001234,1e-7,0.1,100.0,1.7976931348623157e+308,'
               b'-100000000000000000000.0,9007199254740992.0,1e+100,12345678901234567890123],"s":"1e+16"}')


async def test_floats_are_read_back_in_couchdbs_notation(peer, pdb):
    """CouchDB writes every stored float as JavaScript writes the number (plain decimal up to
    21 digits, `.0` on a whole number), so `1e+20` reads back as `100000000000000000000.0` and
    a `HEAD` says that length (met by the differential tester's eighth run). The values are the
    same; the text, and so `Content-Length`, is CouchDB's on both, in every answer. A view's
    JavaScript numbers come back as JavaScript writes them (whole numbers as integers)."""
    headers = {"Content-Type": "application/json"}
    async with peer.put(f"/{pdb}/f", data=FLOATS, headers=headers) as r:
        assert r.status == 201
        rev = (await r.json())["rev"]
    expected = b'{"_id":"f","_rev":"' + rev.encode() + b'",' + FLOATS_READ[1:] + b"\n"
    async with peer.get(f"/{pdb}/f") as r:
        assert await r.read() == expected
    async with peer.head(f"/{pdb}/f") as r:
        assert int(r.headers["Content-Length"]) == len(expected)
    # every answer that holds the document writes its numbers so, parsed and written again or not
    for method, path, body in (("GET", f"/{pdb}/_all_docs?include_docs=true&key=%22f%22", None),
                               ("POST", f"/{pdb}/_all_docs", {"keys": ["f"], "include_docs": True}),
                               ("GET", f"/{pdb}/f?revs=true&open_revs=all", None),
                               ("POST", f"/{pdb}/_bulk_get", {"docs": [{"id": "f"}]}),
                               ("POST", f"/{pdb}/_find", {"selector": {"s": "1e+16"}}),
                               ("GET", f"/{pdb}/_changes?include_docs=true", None)):
        async with peer.request(method, path, json=body) as r:
            assert FLOATS_READ[1:-1] in await r.read(), (method, path)
    async with peer.put(f"/{pdb}/_design/d", json={"views": {"v": {
            "map": "function(d) { if (d.v) emit(d.v[0], [d.v[5], d.v[6], 1.5e16 + 0.5, -0]); }"}}}) as r:
        assert r.status == 201
    async with peer.get(f"/{pdb}/_design/d/_view/v") as r:
        assert b'"key":100000000000000000000,"value":[0.00001,0.000001,15000000000000000,0]' in await r.read()


@pytest.mark.parametrize("query", ["local_seq=true&attachments=true", "revs_info=true&att_encoding_info=true",
                                   "meta=true&attachments=true", "attachments=true"])
async def test_no_etag_with_meta_members_whatever_the_attachment_options(peer, pdb, query):
    """CouchDB sends a document's ETag only when it carries no meta members (`_local_seq`,
    `_revs_info`, `_conflicts`...): also when attachment options send the read down the
    attachments' path (met by the differential tester's ninth run)."""
    await put_doc(peer, pdb, "c", {"x": 1})
    async with peer.get(f"/{pdb}/c?{query}") as r:
        assert r.status == 200
        assert ("ETag" in r.headers) == (query == "attachments=true"), dict(r.headers)


@pytest.mark.parametrize("pos", ["\u00b3", "\u0663", "\uff13"])  # superscript, Arabic-Indic, fullwidth 3
async def test_a_revision_numbered_with_other_digits_is_an_invalid_rev_format(peer, pdb, pos):
    """Only ASCII digits number a revision: Python's str.isdigit() takes '³' (which int() then
    refuses: a 500 the Schemathesis long run found) and int() takes '٣'; CouchDB takes neither."""
    async with peer.put(f"/{pdb}/doc", json={}) as r:
        assert r.status == 201
    invalid = (400, {"error": "bad_request", "reason": "Invalid rev format"})
    rev = f"{pos}-abc"
    for method, path, kw in (("GET", f"/{pdb}/doc", {"params": {"rev": rev}}),
                             ("GET", f"/{pdb}/doc", {"params": {"open_revs": json.dumps([rev])},
                                                     "headers": {"Accept": "application/json"}}),
                             ("DELETE", f"/{pdb}/doc", {"params": {"rev": rev}}),
                             ("PUT", f"/{pdb}/doc", {"json": {"_rev": rev}}),
                             ("POST", f"/{pdb}/_revs_diff", {"json": {"doc": [rev]}})):
        async with peer.request(method, path, **kw) as r:
            assert (r.status, await r.json()) == invalid, (method, path)
    async with peer.head(f"/{pdb}/doc", params={"rev": rev}) as r:
        assert r.status == 400
    async with peer.put(f"/{pdb}/_local/c", json={}) as r:
        assert r.status == 201
    async with peer.get(f"/{pdb}/_local/c", params={"rev": rev}) as r:
        assert (r.status, await r.json()) == invalid
    async with peer.head(f"/{pdb}/_local/c", params={"rev": rev}) as r:
        assert r.status == 400
    async with peer.get(f"/{pdb}/_changes", params={"seq_interval": pos}) as r:
        assert (r.status, await r.json()) == (400, {"error": "bad_request", "reason": "invalid_seq_interval"})
