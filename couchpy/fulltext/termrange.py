"""Term ranges (`kind:[apple TO melon}`) as regular expressions over whole terms.

Lucene compares the terms of `string` and `text` fields as UTF-8 bytes, which orders them as
their code points. Tantivy's Python bindings build range queries only over numbers, dates and
addresses, and Tantivy's query parser refuses bounds with spaces, quotes or brackets. A regex
query runs over the term dictionary like a range would, so a range becomes one regex per bound,
both required:

    terms >= "ca":   ca.*  |  c[b-\\x{10FFFF}].*  |  [d-\\x{10FFFF}].*
    terms <  "ca":   (|c)  |  c[\\x{0}-`].*      |  [\\x{0}-b].*

A term is at least `lo` when it starts with `lo`, or when at the first position where it differs
its character is greater (`lo[:i]` then a greater character, then anything). It is at most `hi`
when it is a prefix of `hi` (the empty term included), or smaller at the first difference. Each
bound gives len(bound) + 1 alternatives. Pure: the regex text only (Rust regex syntax, as Tantivy
reads it).
"""

from __future__ import annotations

MAX_CHAR = 0x10FFFF
ANY = "(?s:.*)"  # any run of characters, newlines included


def literal(text: str) -> str:
    """`text` literally: every character but ASCII letters and digits as a code-point escape (a
    backslash before some punctuation, `\\<`, is an operator in Rust's syntax)."""
    return "".join(c if c.isascii() and c.isalnum() else "\\x{%x}" % ord(c) for c in text)


def _chars(lo: int, hi: int) -> str:
    return "[\\x{%x}-\\x{%x}]" % (lo, hi)


def at_least(bound: str, inclusive: bool) -> str:
    """Terms >= `bound` (> when not inclusive)."""
    alts = [literal(bound) + (ANY if inclusive else "(?s:.+)")]
    for i, c in enumerate(bound):
        if ord(c) < MAX_CHAR:
            alts.append(literal(bound[:i]) + _chars(ord(c) + 1, MAX_CHAR) + ANY)
    return "(?:" + "|".join(alts) + ")"


def at_most(bound: str, inclusive: bool) -> str | None:
    """Terms <= `bound` (< when not inclusive); None when no term is (below the empty term)."""
    alts = [literal(bound[:i]) for i in range(len(bound))]  # its proper prefixes, the empty term first
    if inclusive:
        alts.append(literal(bound))
    for i, c in enumerate(bound):
        if ord(c) > 0:
            alts.append(literal(bound[:i]) + _chars(0, ord(c) - 1) + ANY)
    return "(?:" + "|".join(alts) + ")" if alts else None
