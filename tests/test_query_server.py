"""Query-server workers: JavaScript (V8) and Python map/reduce, containment of bad functions."""

from __future__ import annotations

import os
import resource
import time

import pytest

from couchpy.query_server import CompilationError, OSProcessError, QueryServerError, QueryServerPool, ViewFunctions
from couchpy.query_server.pool import UnknownLanguage


@pytest.fixture
def pool():
    p = QueryServerPool(size=2, timeout=2.0, memory_mb=256, python_enabled=True)
    yield p
    p.close()


DOCS = [{"_id": f"d{i}", "n": i, "tags": ["a", "b"][: i % 3]} for i in range(10)]


def test_js_map_builtins_and_require(pool):
    fns = ViewFunctions(
        "javascript",
        (
            "function(doc) { if (isArray(doc.tags) && doc.tags.length) emit([doc.n, toJSON(doc.tags)], sum([doc.n, 1])); }",
            "function(doc) { var m = require('views/lib/math'); emit(m.double(doc.n)); log('mapped ' + doc._id); }",
        ),
        lib={"math": "var h = require('./helper'); exports.double = function (x) { return h.times(x, 2); };",
             "helper": "exports.times = function (a, b) { return a * b; };"},
    )
    rows = pool.map_docs(fns, DOCS)
    assert len(rows) == 10
    assert rows[0] == [[], [[0, None]]]
    assert rows[1] == [[[[1, '["a"]'], 2]], [[2, None]]]
    assert rows[2] == [[[[2, '["a","b"]'], 3]], [[4, None]]]


def test_js_map_error_skips_only_that_document(pool):
    fns = ViewFunctions("javascript", ("function(doc) { if (doc.n === 3) throw new Error('boom'); emit(doc.n, null); }",))
    rows = pool.map_docs(fns, DOCS)
    assert rows[3] == [None]
    assert [r[0] for i, r in enumerate(rows) if i != 3] == [[[i, None]] for i in range(10) if i != 3]


def test_js_reduce_rereduce_and_limit(pool):
    fns = ViewFunctions("javascript", ("function(doc) { emit(doc.n, doc.n); }",),
                        ("function(keys, values, rereduce) { return rereduce ? sum(values) * 1 : sum(values); }",
                         "function(keys, values) { var a = []; for (var i = 0; i < 1000; i++) a.push(values); return a; }"))
    assert pool.reduce(fns, 0, [[1, "a"], [2, "b"]], [1, 2]) == 3
    assert pool.rereduce(fns, 0, [3, 4]) == 7
    out = pool.reduce(fns, 1, [[1, "a"]], [1])
    assert "Reduce output must shrink more rapidly" in out["reduce_overflow_error"]
    assert pool.rereduce(fns, 0, [1, out]) == out


def test_compilation_error(pool):
    with pytest.raises(CompilationError) as exc:
        pool.compile(ViewFunctions("javascript", ("function(doc) { emit(1 }",), names=("by_n",)))
    assert exc.value.status == 400 and exc.value.error == "compilation_error"
    assert "'by_n' view" in exc.value.reason
    with pytest.raises(CompilationError):
        pool.compile(ViewFunctions("javascript", ("42",)))
    with pytest.raises(CompilationError):
        pool.compile(ViewFunctions("python", ("def fun(doc)\n  yield 1, 2\n",)))


def test_failed_compile_does_not_leave_a_worker_without_its_functions():
    """A worker whose `prepare` failed holds no functions: the next call to the functions it
    held before prepares them again instead of mapping with none (every row lost)."""
    p = QueryServerPool(size=1, timeout=2.0, memory_mb=256)
    try:
        good = ViewFunctions("javascript", ("function(doc) { emit(doc.n, null); }",))
        assert p.map_docs(good, DOCS[:2]) == [[[[0, None]]], [[[1, None]]]]
        with pytest.raises(CompilationError):
            p.compile(ViewFunctions("javascript", ("function(doc) { emit(1 }",)))
        assert p.map_docs(good, DOCS[:2]) == [[[[0, None]]], [[[1, None]]]]
    finally:
        p.close()


def test_python_map_and_reduce(pool):
    fns = ViewFunctions(
        "python",
        ("def fun(doc):\n    if doc['n'] % 2:\n        yield doc['n'], {'t': len(doc['tags'])}\n    log(doc['_id'])\n",
         "def fun(doc):\n    if doc['n'] == 4:\n        raise ValueError('no')\n    yield [doc['_id']], None\n"),
        ("def red(keys, values, rereduce):\n    return sum(values) if rereduce else len(keys)\n", None),
    )
    rows = pool.map_docs(fns, DOCS)
    assert rows[1] == [[[1, {"t": 1}]], [[["d1"], None]]]
    assert rows[4] == [[], None]
    assert pool.reduce(fns, 0, [[1, "d1"], [3, "d3"]], [{}, {}]) == 2
    assert pool.rereduce(fns, 0, [2, 5]) == 7


def test_python_needs_configuration():
    p = QueryServerPool(python_enabled=False)
    try:
        with pytest.raises(UnknownLanguage):
            p.map_docs(ViewFunctions("python", ("def f(doc):\n    yield 1, 1\n",)), DOCS)
        with pytest.raises(UnknownLanguage):
            p.map_docs(ViewFunctions("cobol", ("x",)), DOCS)
    finally:
        p.close()


def test_looping_function_times_out_and_worker_is_replaced(pool):
    loop = ViewFunctions("javascript", ("function(doc) { while (true) {} }",))
    t0 = time.monotonic()
    with pytest.raises(OSProcessError):
        pool.map_docs(loop, DOCS[:2])
    assert time.monotonic() - t0 < 10
    ok = ViewFunctions("javascript", ("function(doc) { emit(doc.n, 1); }",))
    assert pool.map_docs(ok, DOCS[:2]) == [[[[0, 1]]], [[[1, 1]]]]
    pyloop = ViewFunctions("python", ("def fun(doc):\n    while True:\n        pass\n",))
    with pytest.raises(OSProcessError):
        pool.map_docs(pyloop, DOCS[:1])


def test_crashing_worker_is_replaced(pool):
    crash = ViewFunctions("python", ("def fun(doc):\n    import os\n    os._exit(3)\n",))
    with pytest.raises(OSProcessError) as exc:
        pool.map_docs(crash, DOCS[:1])
    assert "exited" in exc.value.reason
    ok = ViewFunctions("python", ("def fun(doc):\n    yield doc['n'], None\n",))
    assert pool.map_docs(ok, DOCS[:1]) == [[[[0, None]]]]


def test_memory_cap(pool):
    hog = ViewFunctions("javascript", ("function(doc) { var a = []; while (true) a.push(new Array(100000).fill(1)); }",))
    with pytest.raises(OSProcessError):
        pool.map_docs(hog, DOCS[:1])
    pyhog = ViewFunctions("python", ("def fun(doc):\n    x = bytearray(2 << 30)\n    yield 1, len(x)\n",))
    rows = pool.map_docs(pyhog, DOCS[:1])
    assert rows == [[None]]  # MemoryError is that document's error: skipped
    ok = ViewFunctions("javascript", ("function(doc) { emit(doc._id, null); }",))
    assert pool.map_docs(ok, DOCS[:1]) == [[[["d0", None]]]]


def test_a_worker_answers_when_the_server_holds_over_a_thousand_descriptors():
    """A server with many databases and feeds open hands its workers descriptors past select's
    FD_SETSIZE (1024); the worker's pipe must still be waited on (it was "exited unexpectedly")."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    p = QueryServerPool(size=1, timeout=10.0)
    try:
        fns = ViewFunctions("javascript", ("function(doc) { emit(doc._id, null); }",))
        assert pool_pipe_fd(p, fns) > 1024
        assert p.map_docs(fns, DOCS[:1]) == [[[["d0", None]]]]
    finally:
        p.close()
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def pool_pipe_fd(p: QueryServerPool, fns: ViewFunctions) -> int:
    """Start the pool's worker (a compile) and give the descriptor its answers arrive on."""
    p.compile(fns)
    return p._idle["javascript"][0].proc.stdout.fileno()


def test_large_batches_use_several_calls(pool):
    fns = ViewFunctions("javascript", ("function(doc) { emit(doc.n, null); }",))
    docs = [{"_id": str(i), "n": i} for i in range(2500)]
    rows = pool.map_docs(fns, docs)
    assert [r[0][0][0] for r in rows] == list(range(2500))


def test_filter_functions(pool):
    js = "function(doc, req) { return doc.n % 2 === 0 && doc.n >= Number(req.query.min || 0); }"
    assert pool.filter_docs("javascript", js, DOCS[:6], {"query": {"min": "2"}}) == [False, False, True, False, True, False]
    throws = "function(doc) { if (doc.n === 1) throw {error: 'oops', reason: 'bad doc'}; return true; }"
    with pytest.raises(QueryServerError) as raised:
        pool.filter_docs("javascript", throws, DOCS[:3], {})
    assert (raised.value.status, raised.value.error, raised.value.reason) == (500, "oops", "bad doc")
    py = "def f(doc, req):\n    return doc['n'] > 7\n"
    assert pool.filter_docs("python", py, DOCS, {}) == [i > 7 for i in range(10)]
    with pytest.raises(CompilationError):
        pool.filter_docs("javascript", "function(doc { return true; }", DOCS[:1], {})
    # a filter does not disturb view functions prepared on the same workers
    fns = ViewFunctions("javascript", ("function(doc) { emit(doc.n, null); }",))
    assert pool.map_docs(fns, DOCS[:1]) == [[[[0, None]]]]


def test_js_engine_heap_stays_bounded_over_many_calls():
    """Each map call evaluates a fresh script; V8 embedded this way never collected them on its
    own (the used heap grew ~6 KB a call, without bound), so the engine asks for collections."""
    import json

    from couchpy.query_server.js_engine import COLLECT_EVERY_BYTES, JSEngine

    engine = JSEngine(max_memory=256 << 20, timeout=5)
    try:
        engine.prepare({"map": ["function(doc){ if (doc.n % 7 === 0) emit(doc.n, doc.pad.length); }"],
                        "reduce": [None], "lib": None})
        evaluated = 0
        worst = 0
        for i in range(1500):  # ~33 MB of script: 8x the collection interval
            docs = json.dumps([{"_id": f"d{i}-{j}", "n": i * 20 + j, "pad": f"{i}" * 300} for j in range(20)]).encode()
            evaluated += len(docs)
            rows = engine.map_raw(docs)
            assert len(json.loads(rows)[0]) == 20  # one result per document
            if i % 100 == 0:
                worst = max(worst, engine.ctx.heap_stats()["used_heap_size"])
        assert evaluated > 6 * COLLECT_EVERY_BYTES
        assert worst < 32 << 20, worst
    finally:
        engine.close()


def test_js_engine_heap_stays_bounded_over_many_small_calls():
    """Each call leaves a few KB in V8 however small its documents: tiny batches that never add up
    to the byte interval are collected by their count."""
    from couchpy.query_server.js_engine import COLLECT_EVERY_BYTES, COLLECT_EVERY_CALLS, JSEngine

    engine = JSEngine(max_memory=256 << 20, timeout=5)
    try:
        engine.prepare({"map": ["function(doc){ emit(doc.n, null); }"], "reduce": [None], "lib": None})
        evaluated = 0
        worst = 0
        for i in range(8 * COLLECT_EVERY_CALLS):
            docs = b'[{"_id":"d%d","n":%d,"pad":"%s"}]' % (i, i, b"x" * 400)
            evaluated += len(docs)
            assert engine.map_raw(docs).startswith(b"[[[[[%d,null]]]]" % i)
            if i % 250 == 0:
                worst = max(worst, engine.ctx.heap_stats()["used_heap_size"])
        assert evaluated < COLLECT_EVERY_BYTES // 2  # only the count can have triggered collections
        assert worst < 3 << 20, worst  # measured: ~0.9 MB with the count, ~7 MB without
    finally:
        engine.close()
