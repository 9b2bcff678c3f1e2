"""couchpy/query_language.py: a runnable language in any case is named in lower case."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from couchpy.query_language import RUNNABLE, canonical


@given(st.sampled_from(RUNNABLE), st.lists(st.booleans(), min_size=10, max_size=10))
def test_a_runnable_language_in_any_case(name, upper):
    written = "".join(c.upper() if up else c for c, up in zip(name, upper + [False] * len(name)))
    assert canonical(written) == name


@given(st.one_of(st.text(), st.none(), st.integers(), st.lists(st.text())))
def test_anything_else_is_kept_as_written(value):
    if isinstance(value, str) and value.lower() in RUNNABLE:
        return
    assert canonical(value) == value
    assert canonical(value) is value
