"""http_api.accept: which media types an Accept header admits (mochiweb's accepts_content_type)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from http_api.accept import accepts

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789+-.", min_size=1, max_size=12)
MEDIA = st.builds(lambda a, b: f"{a}/{b}", TOKEN, TOKEN)


def test_examples():
    assert accepts(None, "multipart/mixed")
    assert accepts("", "multipart/mixed")
    assert accepts("*/*", "multipart/mixed")
    assert accepts("multipart/*", "multipart/mixed")
    assert accepts("application/json, multipart/mixed", "multipart/mixed")
    assert accepts("Multipart/Mixed; boundary=x", "multipart/mixed")
    assert not accepts("application/json", "multipart/mixed")
    assert not accepts("text/html", "multipart/mixed")
    assert not accepts("multipart/mixed;q=0", "multipart/mixed")
    assert not accepts("multipart/related", "multipart/mixed")


@given(MEDIA, st.lists(MEDIA, max_size=4))
def test_a_listed_type_or_wildcard_is_admitted(media, others):
    kind = media.split("/")[0]
    for wanted in (media, kind + "/*", "*/*"):
        assert accepts(", ".join(others + [wanted]), media)


@given(MEDIA, st.lists(MEDIA, min_size=1, max_size=4))
def test_nothing_else_is(media, others):
    listed = [m for m in others if m != media and m.split("/")[0] != media.split("/")[0]]
    if listed:
        assert not accepts(", ".join(listed), media)


@given(MEDIA)
def test_quality_zero_refuses(media):
    assert not accepts(f"{media};q=0, */*;q=0", media)
