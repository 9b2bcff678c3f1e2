"""couchpy.floatfmt writes a float as CouchDB does: JavaScript's number text (asked of V8 here),
`.0` on a whole number; and its cheap look at orjson's output never misses a number that orjson
writes otherwise."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from py_mini_racer import MiniRacer

from couchpy.floatfmt import couchdb_float, differs_from_orjson

finite = st.floats(allow_nan=False, allow_infinity=False)
# every decade where the notations part, and around them
decades = st.builds(lambda m, e: float(f"{m}e{e}"), st.floats(1, 9.999999, allow_nan=False),
                    st.integers(-12, 25)) | st.builds(lambda m, e: -float(f"{m}e{e}"),
                                                       st.integers(1, 10**17), st.integers(-30, 8))

_V8 = MiniRacer()


def _javascript(values: list[float]) -> list[str]:
    return _V8.eval(f"[{','.join(map(repr, values))}].map(String)")


def _couchdb(js: str) -> str:
    return js if any(c in js for c in ".e") else js + ".0"


@settings(max_examples=300)
@given(st.lists(finite | decades, min_size=1, max_size=50))
def test_written_as_javascript_writes_the_number(values):
    expected = [_couchdb(js) for js in _javascript([v for v in values])]
    assert [couchdb_float(v) for v in values] == expected
    assert all(float(couchdb_float(v)) == v for v in values)


@settings(max_examples=500)
@given(finite | decades)
def test_the_cheap_look_finds_every_number_orjson_writes_otherwise(value):
    if couchdb_float(value).encode() != orjson.dumps(value):
        assert differs_from_orjson(orjson.dumps({"x": [value]}))


def test_known_values():
    assert couchdb_float(1e20) == "100000000000000000000.0"
    assert couchdb_float(1e21) == "1e+21"
    assert couchdb_float(-0.0) == "0.0"
    assert couchdb_float(1.234e-6) == "0.000001234"
    assert couchdb_float(1e-7) == "1e-7"
    assert couchdb_float(-1e-320) == "-1e-320"
