"""couchpy.etf: Erlang's external term format of JSON values (what CouchDB hashes)."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from couchpy.etf import Atom, term_to_binary


def test_known_encodings():
    # as `erlang:term_to_binary(T, [{minor_version, 1}])` writes them
    assert term_to_binary(1) == bytes([131, 97, 1])
    assert term_to_binary(300) == bytes([131, 98, 0, 0, 1, 44])
    assert term_to_binary(-1) == bytes([131, 98, 255, 255, 255, 255])
    assert term_to_binary(2**64) == bytes([131, 110, 9, 0] + [0] * 8 + [1])
    assert term_to_binary(-(2**31) - 1) == bytes([131, 110, 4, 1, 1, 0, 0, 128])
    assert term_to_binary(1.5) == bytes([131, 70, 63, 248, 0, 0, 0, 0, 0, 0])
    assert term_to_binary("a") == bytes([131, 109, 0, 0, 0, 1, 97])
    assert term_to_binary(True) == bytes([131, 100, 0, 4]) + b"true"
    assert term_to_binary(None) == bytes([131, 100, 0, 4]) + b"null"
    assert term_to_binary(Atom("false")) == bytes([131, 100, 0, 5]) + b"false"
    assert term_to_binary([]) == bytes([131, 106])
    assert term_to_binary([1, 2]) == bytes([131, 107, 0, 2, 1, 2])  # a list of bytes is a string
    assert term_to_binary([1, 256]) == bytes([131, 108, 0, 0, 0, 2, 97, 1, 98, 0, 0, 1, 0, 106])
    assert term_to_binary({}) == bytes([131, 104, 1, 106])  # {[]}
    assert term_to_binary({"a": 1}) == bytes([131, 104, 1, 108, 0, 0, 0, 1, 104, 2, 109, 0, 0, 0, 1, 97, 97, 1, 106])


def _decode(data: bytes, i: int):
    """Just enough of a reader for the JSON terms couchpy.etf writes (the test's own)."""
    tag = data[i]
    if tag == 97:
        return data[i + 1], i + 2
    if tag == 98:
        return struct.unpack(">i", data[i + 1:i + 5])[0], i + 5
    if tag == 110:
        n, sign = data[i + 1], data[i + 2]
        value = int.from_bytes(data[i + 3:i + 3 + n], "little")
        return (-value if sign else value), i + 3 + n
    if tag == 70:
        return struct.unpack(">d", data[i + 1:i + 9])[0], i + 9
    if tag == 100:
        n = struct.unpack(">H", data[i + 1:i + 3])[0]
        return {"true": True, "false": False, "null": None}[data[i + 3:i + 3 + n].decode()], i + 3 + n
    if tag == 109:
        n = struct.unpack(">I", data[i + 1:i + 5])[0]
        return data[i + 5:i + 5 + n].decode(), i + 5 + n
    if tag == 106:
        return [], i + 1
    if tag == 107:
        n = struct.unpack(">H", data[i + 1:i + 3])[0]
        return list(data[i + 3:i + 3 + n]), i + 3 + n
    if tag == 108:
        n = struct.unpack(">I", data[i + 1:i + 5])[0]
        i += 5
        out = []
        for _ in range(n):
            item, i = _decode(data, i)
            out.append(item)
        assert data[i] == 106
        return out, i + 1
    if tag == 104:
        n = data[i + 1]
        i += 2
        items = []
        for _ in range(n):
            item, i = _decode(data, i)
            items.append(item)
        if n == 1:  # an object: {[{K, V}, ...]}
            return {k: v for k, v in items[0]}, i
        return tuple(items), i
    raise AssertionError(f"unexpected tag {tag}")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=20,
)


@given(json_values)
def test_json_values_read_back(value):
    data = term_to_binary(value)
    assert data[0] == 131
    back, end = _decode(data, 1)
    assert end == len(data) and back == value


@given(st.dictionaries(st.text(max_size=3), st.integers(), min_size=2, max_size=5))
def test_member_order_counts(obj):
    # CouchDB hashes the body in its member order: another order is another term
    reordered = dict(reversed(list(obj.items())))
    assert term_to_binary(obj) != term_to_binary(reordered)
