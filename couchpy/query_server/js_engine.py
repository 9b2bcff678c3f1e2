"""JavaScript view functions in an embedded V8 (mini-racer), inside a worker process.

The runtime below gives map functions what couchjs gives them: `emit`, `log`, `sum`, `toJSON`,
`isArray` and `require` of CommonJS modules kept in the design document's `views.lib`. Functions are
compiled with an indirect eval, so they see only globals, never the runtime's internals. A batch of
documents crosses the boundary as one JSON string each way (V8's JSON.parse/stringify are much faster
than per-document calls). V8 runs with a heap limit and each call with a time limit; hitting either
aborts the call and the worker reports it (the pool then replaces the worker).

Every call is a fresh script (its documents are a string literal in it), and embedded V8 left
alone does not collect them: its garbage collector waits for a near-full heap (the hard limit is
far above what the worker needs) and the idle-time collection it relies on otherwise never runs
in mini-racer. Measured: the used heap grew by about 6 KB per map call without bound (120 MB
after 20,000 small batches). So the engine asks V8 for a full collection after each
COLLECT_EVERY_BYTES of script it evaluated or COLLECT_EVERY_CALLS calls, whichever comes first
(a call leaves a few KB of its own however small its documents); with only the runtime and the
loaded functions alive, that collection is cheap.
"""

from __future__ import annotations

from typing import Any

import orjson
from py_mini_racer import MiniRacer

from .. import jsonutil

# Script bytes evaluated between two full collections: the garbage held between them is of this
# order (plus the rows the calls made), and a collection of the small live heap costs 2-10 ms.
COLLECT_EVERY_BYTES = 4 << 20
COLLECT_EVERY_CALLS = 500

RUNTIME = r"""
var __qs = (function () {
  var maps = [], reduces = [], lib = null, rows = null, logs = [], modules = {}, filters = {};
  var G = (0, eval)('this');

  G.emit = function (key, value) {
    rows.push([key === undefined ? null : key, value === undefined ? null : value]);
  };
  G.log = function (msg) {
    logs.push(typeof msg === 'string' ? msg : JSON.stringify(msg));
  };
  G.sum = function (values) {
    var s = 0;
    for (var i = 0; i < values.length; i++) s += values[i];
    return s;
  };
  G.toJSON = function (v) { return JSON.stringify(v); };
  // Nouveau index functions: `index(type, name, value, options)` is live only while one runs
  // (couchpy/fulltext wraps the function in `__nouveau`); each call is one emitted row, checked
  // as Nouveau checks it (a throw leaves the document out of the index).
  var nouveauOn = false;
  function nvType(what, expected, v) {
    if (typeof v !== expected)
      throw {name: 'TypeError', message: 'type of ' + what + ' must be a ' + expected + ' not ' + typeof v};
  }
  G.index = function (type, name, value, options) {
    if (!nouveauOn) throw new Error('index() is only available in nouveau index functions');
    nvType('type', 'string', type);
    nvType('name', 'string', name);
    if (name.substring(0, 1) === '_')
      throw {name: 'ReservedName', message: 'name must not start with an underscore'};
    options = options || {};
    switch (type) {
      case 'double':
      case 'string':
      case 'text':
        nvType('value', type === 'double' ? 'number' : 'string', value);
        if (type === 'double' && !isFinite(value))
          throw {name: 'TypeError', message: 'value of ' + name + ' must be a finite number'};
        rows.push([[type, name, value, options.store === true, options.facet === true], null]);
        break;
      case 'stored':
        if (typeof value !== 'number' && typeof value !== 'string')
          throw {name: 'TypeError', message: 'type of ' + value + ' must be a string or number'};
        rows.push([[type, name, value, true, false], null]);
        break;
      default:
        throw {name: 'TypeError', message: type + ' not supported'};
    }
  };
  G.__nouveau = function (f) {
    if (typeof f !== 'function') throw new Error('Expression does not eval to a function.');
    return function (doc) {
      nouveauOn = true;
      try { f(doc); } finally { nouveauOn = false; }
    };
  };
  G.isArray = function (v) { return Array.isArray(v); };

  function resolve(base, id) {
    var parts = id.split('/');
    var out = (parts[0] === '.' || parts[0] === '..') ? base.slice() : [];
    for (var i = 0; i < parts.length; i++) {
      var p = parts[i];
      if (p === '' || p === '.') continue;
      if (p === '..') {
        if (out.length === 0) throw ['error', 'invalid_require_path', 'Object has no parent ' + JSON.stringify(id)];
        out.pop();
      } else out.push(p);
    }
    return out;
  }
  function makeRequire(base) {
    return function (id) {
      if (lib === null) throw ['error', 'invalid_require_path', 'No views.lib in this design document'];
      var path = resolve(base, id), key = path.join('/');
      if (Object.prototype.hasOwnProperty.call(modules, key)) return modules[key].exports;
      var src = lib;
      for (var i = 0; i < path.length; i++) {
        if (src === null || typeof src !== 'object' || !Object.prototype.hasOwnProperty.call(src, path[i]))
          throw ['error', 'invalid_require_path', 'Object has no property "' + path[i] + '". ' + JSON.stringify(src)];
        src = src[path[i]];
      }
      if (typeof src !== 'string')
        throw ['error', 'invalid_require_path', 'Must require a string, not ' + typeof src];
      var module = {id: key, exports: {}};
      modules[key] = module;
      var fn = (0, eval)('(function (module, exports, require) {' + src + '\n})');
      fn.call(module.exports, module, module.exports, makeRequire(path.slice(0, -1)));
      return module.exports;
    };
  }

  function compile(src) {
    // The newline keeps a trailing line comment from swallowing the closing parenthesis.
    var f;
    try { f = (0, eval)('(' + src + '\n)'); }
    catch (e) {
      // couchjs parses the source as a program, so `function (doc) {...};` (a statement
      // followed by `;`) compiles there; so it does here.
      var trimmed = src.replace(/[\s;]+$/, '');
      if (!(e instanceof SyntaxError) || trimmed === src) throw e;
      f = (0, eval)('(' + trimmed + '\n)');
    }
    if (typeof f !== 'function') throw new Error('Expression does not eval to a function. (' + src + ')');
    return f;
  }
  // [error, reason] of a value a user function threw, as couchjs's handleError names it
  function thrownError(e) {
    if (e && e.error !== undefined && e.reason !== undefined) return [String(e.error), String(e.reason)];
    if (e && e.name) return ['error', e.name + (e.message ? ': ' + e.message : '')];
    return ['unknown_error', 'unnamed_error'];
  }
  function errText(e) {
    if (e && e.message) return e.message;
    if (Array.isArray(e)) return e.slice(1).join(': ');
    try { return JSON.stringify(e); } catch (x) { return String(e); }
  }

  return {
    prepare: function (spec) {
      maps = []; reduces = []; modules = {};
      lib = spec.lib ? {views: {lib: spec.lib}} : null;
      G.require = makeRequire([]);
      for (var i = 0; i < spec.map.length; i++) {
        try { maps.push(compile(spec.map[i])); }
        catch (e) { return JSON.stringify(['map', i, errText(e)]); }
      }
      for (var j = 0; j < spec.reduce.length; j++) {
        try { reduces.push(spec.reduce[j] === null ? null : compile(spec.reduce[j])); }
        catch (e) { return JSON.stringify(['reduce', j, errText(e)]); }
      }
      return 'null';
    },
    map: function (docsJson) {
      var docs = JSON.parse(docsJson), out = new Array(docs.length), errors = [];
      for (var i = 0; i < docs.length; i++) {
        var perFun = new Array(maps.length);
        for (var j = 0; j < maps.length; j++) {
          rows = [];
          try { maps[j](docs[i]); perFun[j] = rows; }
          catch (e) { perFun[j] = null; errors.push([docs[i]._id, j, errText(e)]); }
        }
        out[i] = perFun;
      }
      rows = null;
      var l = logs; logs = [];
      return JSON.stringify([out, errors, l]);
    },
    filter: function (src, docsJson, req) {
      var f = filters[src];
      if (f === undefined) { f = compile(src); filters[src] = f; }
      var docs = JSON.parse(docsJson), out = new Array(docs.length);
      for (var i = 0; i < docs.length; i++) {
        try { out[i] = !!f(docs[i], req); }
        catch (e) {
          // as couchjs: a throw fails the whole request with the error it names
          var l0 = logs; logs = [];
          return JSON.stringify([null, l0, thrownError(e)]);
        }
      }
      var l = logs; logs = [];
      return JSON.stringify([out, l]);
    },
    // an update handler: f(doc, req) -> [doc or null, response]; a throw is a render_error
    update: function (src, docJson, req) {
      var f = filters[src];
      if (f === undefined) { f = compile(src); filters[src] = f; }
      var out;
      try { out = f(JSON.parse(docJson), req); }
      catch (e) {
        var l0 = logs; logs = [];
        return JSON.stringify([null, null, l0, ['render_error', 'function raised error: ' + errText(e)]]);
      }
      var l = logs; logs = [];
      // as couchjs reads what it returned: result[0] and result[1] of whatever it is (couchjs
      // fails reading them from nothing), the response a string or an object, else an error
      if (out === undefined || out === null) {
        return JSON.stringify([null, null, l, ['render_error',
          "function raised error: TypeError: cannot read property '0' of " + out]]);
      }
      var doc = out[0], resp = out[1];
      if (typeof resp === 'string') resp = { body: resp };
      else if (resp === null || typeof resp !== 'object') {
        return JSON.stringify([null, null, l, ['render_error', 'undefined response from update function']]);
      }
      return JSON.stringify([doc === undefined ? null : doc, resp, l]);
    },
    // validate_doc_update(newDoc, oldDoc, userCtx, secObj) over [[newDoc, oldDoc], ...]: null
    // when accepted, else {forbidden: msg} or {unauthorized: msg}, as CouchDB reads a throw.
    validate: function (src, itemsJson, userCtx, secObj) {
      var f = filters[src];
      if (f === undefined) { f = compile(src); filters[src] = f; }
      var items = JSON.parse(itemsJson), out = new Array(items.length);
      for (var i = 0; i < items.length; i++) {
        try { f(items[i][0], items[i][1], userCtx, secObj); out[i] = null; }
        catch (e) {
          if (e && typeof e === 'object' && e.forbidden !== undefined) out[i] = { forbidden: String(e.forbidden) };
          else if (e && typeof e === 'object' && e.unauthorized !== undefined) out[i] = { unauthorized: String(e.unauthorized) };
          else { out[i] = { forbidden: errText(e) }; logs.push('validate_doc_update error: ' + errText(e)); }
        }
      }
      var l = logs; logs = [];
      return JSON.stringify([out, l]);
    },
    reduce: function (idx, keys, values, rereduce) {
      var r;
      try { r = reduces[idx](keys, values, rereduce); }
      catch (e) {
        // as couchjs: `fatal_error` and ['fatal', ...] abort the query; anything else a reduce
        // throws is logged and reduces to null
        if (e === 'fatal_error') throw ['error', 'map_runtime_error', "function raised 'fatal_error'"];
        if (Array.isArray(e) && e[0] === 'fatal') throw e;
        logs.push('function raised exception ' + errText(e));
        r = null;
      }
      var l = logs; logs = [];
      return JSON.stringify([r === undefined ? null : r, l]);
    }
  };
})();
"""


class EngineError(Exception):
    def __init__(self, error: str, reason: str):
        super().__init__(reason)
        self.error = error
        self.reason = reason


class JSEngine:
    def __init__(self, max_memory: int | None = None, timeout: float | None = None):
        self.ctx = MiniRacer()
        if max_memory:
            self.ctx.set_hard_memory_limit(max_memory)
        self.timeout = timeout
        self._evaluated = 0  # script characters since the last full collection
        self._calls = 0  # and calls
        self.ctx.eval(RUNTIME)

    def _eval(self, code: str) -> Any:
        self._evaluated += len(code)
        self._calls += 1
        if self._evaluated >= COLLECT_EVERY_BYTES or self._calls >= COLLECT_EVERY_CALLS:
            self._evaluated = self._calls = 0
            self.ctx.low_memory_notification()
        try:
            return self.ctx.eval(code, timeout_sec=self.timeout)
        except Exception as exc:  # mini-racer: JSTimeoutException, JSOOMException, JSEvalException
            name = type(exc).__name__
            if "Timeout" in name:
                raise EngineError("os_process_error", "timeout") from None
            if "OOM" in name or self.ctx.was_hard_memory_limit_reached():
                raise EngineError("os_process_error", "JavaScript heap limit reached") from None
            raise EngineError("javascript_error", str(exc).strip().splitlines()[0] if str(exc) else name) from None

    def prepare(self, spec: dict) -> Any:
        res = self._eval("__qs.prepare(" + _literal(spec) + ")")
        return orjson.loads(res)

    def map_raw(self, docs_json: bytes) -> bytes:
        literal = orjson.dumps(docs_json.decode("utf-8", "surrogatepass")).decode()
        return self._eval("__qs.map(" + literal + ")").encode("utf-8", "surrogatepass")

    def _run_user_function(self, method: str, src: str, items_json: bytes, *args: Any) -> bytes:
        """`__qs.<method>(src, items, ...args)`; a function that does not evaluate is a
        compilation_error, as CouchDB reports it."""
        literal = orjson.dumps(items_json.decode("utf-8", "surrogatepass")).decode()
        extra = "".join(", " + _literal(a) for a in args)
        code = "__qs." + method + "(" + orjson.dumps(src).decode() + ", " + literal + extra + ")"
        try:
            return self._eval(code).encode("utf-8", "surrogatepass")
        except EngineError as exc:
            if exc.error == "javascript_error":
                raise EngineError("compilation_error", exc.reason) from None
            raise

    def filter(self, src: str, docs_json: bytes, req: Any) -> bytes:
        return self._run_user_function("filter", src, docs_json, req)

    def validate(self, src: str, items_json: bytes, user_ctx: Any, sec_obj: Any) -> bytes:
        return self._run_user_function("validate", src, items_json, user_ctx, sec_obj)

    def update(self, src: str, doc_json: bytes, req: Any) -> bytes:
        return self._run_user_function("update", src, doc_json, req)

    def reduce(self, idx: int, keys: Any, values: list, rereduce: bool) -> tuple[Any, list]:
        args = _literal([idx, keys, values, rereduce])
        res = self._eval("__qs.reduce.apply(null, " + args + ")")
        out, logs = orjson.loads(res)
        return out, logs

    def close(self) -> None:
        try:
            self.ctx.close()
        except Exception:
            pass


def _literal(value: Any) -> str:
    """A JSON value as JavaScript source. Through jsonutil, which writes an integer beyond 64
    bits (a `_security` object, a request's body or a `views.lib` may hold one) as its digits,
    which JavaScript reads as the nearest double, as CouchDB's query server reads it."""
    return jsonutil.dumps(value).decode()
