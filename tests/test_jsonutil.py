"""couchpy.jsonutil: JSON exactly as written (big integers, key order) and BadRequest for non-JSON."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couchpy import jsonutil
from couchpy.errors import BadRequest, CouchError

BIG = 18446744073709551616  # 2**64: beyond any 64-bit integer


def test_big_int_round_trips_exactly():
    raw = b'{"n":18446744073709551616}'
    doc = jsonutil.loads(raw)
    assert doc == {"n": BIG}
    assert isinstance(doc["n"], int)
    assert jsonutil.dumps(doc) == raw


@pytest.mark.parametrize(
    "number",
    [
        "18446744073709551615",  # 2**64 - 1, still fits orjson's u64
        "18446744073709551616",
        "-9223372036854775809",  # one below i64 min
        "123456789012345678901234567890123456789",
        "-123456789012345678901234567890123456789",
        "9223372036854775807",
        "-9223372036854775808",
    ],
)
def test_integers_of_any_size_round_trip(number):
    raw = ('{"a":[1,' + number + '],"b":"x"}').encode()
    doc = jsonutil.loads(raw)
    assert doc["a"][1] == int(number)
    assert jsonutil.dumps(doc) == raw
    assert jsonutil.loads(jsonutil.dumps(doc)) == doc


@settings(max_examples=200, deadline=None)
@given(st.integers())
def test_any_integer_round_trips(n):
    raw = jsonutil.dumps({"n": n})
    assert raw == ('{"n":%d}' % n).encode()
    back = jsonutil.loads(raw)["n"]
    assert back == n and type(back) is int


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_round_trip_of_any_json_value(value):
    assert jsonutil.loads(jsonutil.dumps(value)) == value
    # what we write is standard JSON that any parser reads back the same
    assert json.loads(jsonutil.dumps(value).decode()) == value


def _signs(value):
    """`value` with each float replaced by its sign bit and bits (-0.0 and 0.0 differ)."""
    if isinstance(value, float):
        return ("float", struct.pack(">d", value))
    if isinstance(value, list):
        return [_signs(v) for v in value]
    if isinstance(value, dict):
        return {k: _signs(v) for k, v in value.items()}
    return value


@settings(max_examples=200, deadline=None)
@given(json_values | st.lists(st.sampled_from([-0.0, 0.0, -0.05, "-0.0", 10**30])))
def test_a_stored_body_keeps_its_signs_and_is_read_out_as_couchdb_writes_it(value):
    stored = jsonutil.dumps_stored({"v": value})
    assert _signs(jsonutil.loads(stored)) == _signs({"v": value})  # -0.0 kept: hashed by edits
    assert jsonutil.readable(stored) == jsonutil.dumps({"v": value})  # read out as 0.0


def test_readable_leaves_other_text_alone():
    stored = jsonutil.dumps_stored({"a": -0.0, "s": "-0.0", "b": [-0.05, 1e20]})
    assert stored == b'{"a":-0.0,"s":"-0.0","b":[-0.05,100000000000000000000.0]}'
    assert jsonutil.readable(stored) == b'{"a":0.0,"s":"-0.0","b":[-0.05,100000000000000000000.0]}'


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=10), st.integers(), max_size=12))
def test_key_order_is_kept(d):
    # build a body whose key order is not sorted
    items = list(reversed(list(d.items())))
    raw = json.dumps(dict(items), separators=(",", ":"), ensure_ascii=False).encode()
    doc = jsonutil.loads(raw)
    assert list(doc) == [k for k, _ in items]
    assert jsonutil.dumps(doc) == raw


def test_key_order_kept_with_big_int_slow_path():
    raw = b'{"zeta":1,"alpha":18446744073709551616,"mid":{"y":2,"b":3}}'
    doc = jsonutil.loads(raw)
    assert list(doc) == ["zeta", "alpha", "mid"]
    assert list(doc["mid"]) == ["y", "b"]
    assert jsonutil.dumps(doc) == raw


def test_dumps_sorted_is_canonical():
    a = jsonutil.dumps_sorted({"b": 1, "a": [BIG, {"d": 1, "c": 2}]})
    b = jsonutil.dumps_sorted({"a": [BIG, {"c": 2, "d": 1}], "b": 1})
    assert a == b == b'{"a":[18446744073709551616,{"c":2,"d":1}],"b":1}'


def test_unicode_survives():
    doc = {"s": "h\u00e9llo \u2603 \U0001f600", "k\u00e9y": 1}
    assert jsonutil.loads(jsonutil.dumps(doc)) == doc
    assert jsonutil.loads('{"s":"\\u00e9\\ud83d\\ude00"}') == {"s": "\u00e9\U0001f600"}


def test_str_input_accepted():
    assert jsonutil.loads('{"a": [1, 2.5, null, true]}') == {"a": [1, 2.5, None, True]}


BAD_BODIES = [
    b"",
    b"   ",
    b"\n",
    b"NaN",
    b'{"a":NaN}',
    b'{"a":Infinity}',
    b'{"a":-Infinity}',
    b"[1e999]",  # overflows to infinity: not a finite JSON number
    b'{"a":"\xff"}',  # invalid UTF-8
    b'{"a":"\xc3"}',  # truncated UTF-8 sequence
    b"\xff\xfe{}",
    b"{",
    b'{"a":1,}',
    b"{'a':1}",
    b"[1,2",
    b'{"a":1} trailing',
    b"undefined",
    # the same failures on the slow (big-integer) path
    b'{"n":18446744073709551616,"a":NaN}',
    b'{"n":18446744073709551616,"a":Infinity}',
    b'{"n":18446744073709551616,"a":"\xff"}',
    b'{"n":18446744073709551616,"a":1e999}',
    b'{"n":18446744073709551616,"a":-1e999}',
    b'{"n":18446744073709551616,"a":"\\ud800"}',  # lone surrogate: not encodable text
    b'{"n":18446744073709551616',
]


@pytest.mark.parametrize("raw", BAD_BODIES)
def test_not_json_is_bad_request(raw):
    with pytest.raises(BadRequest) as info:
        jsonutil.loads(raw)
    err = info.value
    assert isinstance(err, CouchError)
    assert err.status == 400
    assert err.error == "bad_request"
    assert err.body() == {"error": "bad_request", "reason": err.reason}
    assert err.reason


def test_lone_surrogate_rejected_on_fast_path_too():
    with pytest.raises(BadRequest):
        jsonutil.loads(b'{"a":"\\ud800"}')


def test_nan_and_infinity_never_written():
    for bad in (float("nan"), float("inf"), float("-inf")):
        try:
            out = jsonutil.dumps({"a": bad, "n": BIG})
        except (ValueError, TypeError):
            continue
        # if written at all, the output must still be valid JSON
        json.loads(out, parse_constant=lambda c: pytest.fail(f"wrote {c}"))


def test_digits_inside_strings_are_kept():
    raw = b'{"s":"12345678901234567890123456789","f":0.1234567890123456789}'
    doc = jsonutil.loads(raw)
    assert doc["s"] == "12345678901234567890123456789"
    assert isinstance(doc["f"], float)


@pytest.mark.parametrize("tail", [b"1", b"18446744073709551616"])
@pytest.mark.parametrize("depth", [600, 1000, 1500, 100_000])
def test_nesting_too_deep_to_write_back_is_bad_request(depth, tail):
    with pytest.raises(BadRequest):
        jsonutil.loads(b"[" * depth + tail + b"]" * depth)


def test_reasonable_nesting_round_trips():
    raw = b'{"a":' * 100 + b"18446744073709551616" + b"}" * 100
    assert jsonutil.dumps(jsonutil.loads(raw)) == raw
    raw = b"[" * 400 + b"1" + b"]" * 400
    assert jsonutil.dumps(jsonutil.loads(raw)) == raw
