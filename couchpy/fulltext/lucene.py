"""Lucene's classic query syntax, parsed into a small tree (pure; no index, no I/O).

Nouveau passes `q` to Lucene's classic QueryParser. Tantivy's own parser is close but differs where
it matters (`a AND NOT b` matches nothing there, `*:*` is a syntax error, no `?`/`*` wildcards or
`~` fuzziness on plain terms), so couchpy parses the syntax itself and builds Tantivy queries from
this tree (couchpy/fulltext/index.py). The clause rules are Lucene's `addClause` with the default
operator OR: `a AND b` makes both required, `NOT a` / `-a` prohibited, `+a` required, and a
prohibited clause stays prohibited whatever conjunction precedes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import BadRequest

MUST, SHOULD, MUST_NOT = "must", "should", "must_not"

# characters that end a bare term unless escaped (Lucene's list, less `/` which Lucene treats as a
# regexp delimiter: here it is an ordinary character)
_SPECIAL = set('+-&|!(){}[]^"~*?:\\ \t\r\n')
_TERM_END = set(' \t\r\n()[]{}^"~:')


class QueryParseError(BadRequest):
    error = "query_parse_error"


@dataclass(frozen=True)
class MatchAll:
    boost: float = 1.0


@dataclass(frozen=True)
class Term:
    """A bare term; `kind` is term, prefix (`ab*`), wildcard (`a?c*`) or fuzzy (`abc~1`)."""
    field: str | None
    text: str
    kind: str = "term"
    fuzz: int = 0
    boost: float = 1.0


@dataclass(frozen=True)
class Phrase:
    field: str | None
    text: str
    slop: int = 0
    boost: float = 1.0


@dataclass(frozen=True)
class Range:
    """`[lo TO hi]`, `{lo TO hi}` or mixed; None is an open end (`*`)."""
    field: str | None
    lo: str | None
    hi: str | None
    lo_incl: bool
    hi_incl: bool
    boost: float = 1.0


@dataclass(frozen=True)
class Bool:
    clauses: tuple[tuple[str, object], ...] = field(default_factory=tuple)
    boost: float = 1.0


Node = MatchAll | Term | Phrase | Range | Bool


def _fail(msg: str) -> QueryParseError:
    return QueryParseError(msg)


class _Parser:
    def __init__(self, text: str):
        self.s = text
        self.i = 0

    # ------------------------------------------------------------ scanning

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def skip_ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t\r\n":
            self.i += 1

    def at_word(self, word: str) -> bool:
        """`AND`/`OR`/`NOT` as an operator: the word followed by a delimiter."""
        s, i = self.s, self.i
        if not s.startswith(word, i):
            return False
        j = i + len(word)
        return j >= len(s) or s[j] in " \t\r\n()\"+-!"

    def bare(self) -> tuple[str, bool]:
        """A bare word up to a delimiter, unescaped; and whether it holds unescaped `*`/`?`."""
        out: list[str] = []
        wild = False
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c == "\\":
                if self.i + 1 >= len(s):
                    raise _fail("Cannot parse '" + s + "': Term can not end with escape character.")
                out.append(s[self.i + 1])
                self.i += 2
                continue
            if c in _TERM_END:
                break
            if c in "*?":
                wild = True
                out.append("\0" + c)  # marked: an unescaped wildcard, not the literal character
                self.i += 1
                continue
            if c in "+-!&|" and not out:
                break
            out.append(c)
            self.i += 1
        return "".join(out), wild

    def number_after(self, marker: str, default: float | None) -> float | None:
        if self.peek() != marker:
            return None
        self.i += 1
        j = self.i
        while self.i < len(self.s) and self.s[self.i] in "0123456789.":
            self.i += 1
        if j == self.i:
            if default is None:
                raise _fail(f"Cannot parse '{self.s}': expected a number after '{marker}'")
            return default
        try:
            return float(self.s[j:self.i])
        except ValueError:
            raise _fail(f"Cannot parse '{self.s}': bad number after '{marker}'") from None

    # ------------------------------------------------------------ grammar

    def parse(self) -> Node:
        node = self.query(None, top=True)
        self.skip_ws()
        if self.i < len(self.s):
            raise _fail(f"Cannot parse '{self.s}': unexpected '{self.s[self.i]}' at {self.i}")
        return node

    def query(self, fld: str | None, top: bool = False) -> Node:
        clauses: list[list] = []  # [occur, node]
        while True:
            self.skip_ws()
            c = self.peek()
            if c == "" or c == ")":
                break
            conj = None
            if self.at_word("AND") or self.s.startswith("&&", self.i):
                conj = "and"
                self.i += 3 if self.at_word("AND") else 2
            elif self.at_word("OR") or self.s.startswith("||", self.i):
                conj = "or"
                self.i += 2
            if conj is not None:
                if not clauses:
                    raise _fail(f"Cannot parse '{self.s}': a query can not start with {conj.upper()}")
                self.skip_ws()
            mod = None
            c = self.peek()
            if c == "+":
                mod = "req"
                self.i += 1
            elif c == "-" or c == "!":
                mod = "not"
                self.i += 1
            elif self.at_word("NOT"):
                mod = "not"
                self.i += 3
            self.skip_ws()
            if self.peek() in ("", ")"):
                raise _fail(f"Cannot parse '{self.s}': Encountered end of a clause where a term was expected")
            node = self.clause(fld)
            if conj == "and" and clauses and clauses[-1][0] != MUST_NOT:
                clauses[-1][0] = MUST
            if mod == "not":
                occur = MUST_NOT
            elif mod == "req" or conj == "and":
                occur = MUST
            else:
                occur = SHOULD
            clauses.append([occur, node])
        if not clauses:
            if top:
                raise _fail(f"Cannot parse '{self.s}': Encountered \"<EOF>\"")
            raise _fail(f"Cannot parse '{self.s}': empty group")
        if len(clauses) == 1 and clauses[0][0] != MUST_NOT:
            return clauses[0][1]
        return Bool(tuple((o, n) for o, n in clauses))

    def clause(self, fld: str | None) -> Node:
        start = self.i
        c = self.peek()
        if c not in '([{"':
            word, wild = self.bare()
            if self.peek() == ":" and word and not wild:
                self.i += 1
                self.skip_ws()
                return self.clause(word)
            if word == "\0*" and self.peek() == ":":
                self.i += 1
                self.skip_ws()
                inner, _ = self.bare()
                if inner != "\0*":
                    raise _fail(f"Cannot parse '{self.s}': '*' as a field name only in '*:*'")
                return self._boosted(MatchAll())
            self.i = start
        if c == "(":
            self.i += 1
            inner = self.query(fld)
            if self.peek() != ")":
                raise _fail(f"Cannot parse '{self.s}': missing ')'")
            self.i += 1
            boost = self.number_after("^", None)
            if boost is not None:
                inner = _with_boost(inner, boost)
            return inner
        if c in "[{":
            return self._boosted(self.range(fld))
        if c == '"':
            return self._boosted(self.phrase(fld))
        word, wild = self.bare()
        if not word:
            raise _fail(f"Cannot parse '{self.s}': unexpected '{self.peek()}' at {self.i}")
        if word == "\0*" and fld is None:
            return self._boosted(MatchAll())
        if self.peek() == "~":
            dist = min(2, int(self.number_after("~", 2.0)))  # `~` alone: distance 2, as Lucene
            return self._boosted(Term(fld, word.replace("\0", ""), "fuzzy", dist))
        if wild:
            marks = word.count("\0")
            if word.endswith("\0*") and marks == 1:
                return self._boosted(Term(fld, word[:-2], "prefix"))
            return self._boosted(Term(fld, word, "wildcard"))
        return self._boosted(Term(fld, word))

    def _boosted(self, node: Node) -> Node:
        boost = self.number_after("^", None)
        return node if boost is None else _with_boost(node, boost)

    def phrase(self, fld: str | None) -> Node:
        self.i += 1
        out: list[str] = []
        while True:
            if self.i >= len(self.s):
                raise _fail(f"Cannot parse '{self.s}': unterminated phrase")
            c = self.s[self.i]
            if c == "\\" and self.i + 1 < len(self.s):
                out.append(self.s[self.i + 1])
                self.i += 2
                continue
            self.i += 1
            if c == '"':
                break
            out.append(c)
        slop = self.number_after("~", 0.0)
        return Phrase(fld, "".join(out), int(slop or 0))

    def range(self, fld: str | None) -> Node:
        lo_incl = self.peek() == "["
        self.i += 1
        self.skip_ws()
        lo = self.range_end()
        self.skip_ws()
        if not self.at_word("TO"):
            raise _fail(f"Cannot parse '{self.s}': expected 'TO' in a range")
        self.i += 2
        self.skip_ws()
        hi = self.range_end()
        self.skip_ws()
        c = self.peek()
        if c not in "]}" or c == "":
            raise _fail(f"Cannot parse '{self.s}': unterminated range")
        self.i += 1
        return Range(fld, lo, hi, lo_incl, c == "]")

    def range_end(self) -> str | None:
        if self.peek() == '"':
            node = self.phrase(None)
            assert isinstance(node, Phrase)
            return node.text
        out: list[str] = []
        while self.i < len(self.s) and self.s[self.i] not in " \t\r\n]}":
            if self.s[self.i] == "\\" and self.i + 1 < len(self.s):
                out.append(self.s[self.i + 1])
                self.i += 2
                continue
            out.append(self.s[self.i])
            self.i += 1
        text = "".join(out)
        if not text:
            raise _fail(f"Cannot parse '{self.s}': empty range bound")
        return None if text == "*" else text


def _with_boost(node: Node, boost: float) -> Node:
    return type(node)(**{**node.__dict__, "boost": boost})  # type: ignore[arg-type]


def parse(q: str) -> Node:
    """The tree of a Lucene query string; QueryParseError (400) when it is not one."""
    if not isinstance(q, str):
        raise _fail("q parameter must be a string")
    if not q.strip():
        raise _fail("Cannot parse '" + q + "': Encountered \"<EOF>\"")
    return _Parser(q).parse()


def wildcard_regex(word: str) -> str:
    """A wildcard term (`\\0*` any run, `\\0?` one character) as a Tantivy (Rust) regex over the
    whole term."""
    out: list[str] = []
    i = 0
    while i < len(word):
        c = word[i]
        if c == "\0" and i + 1 < len(word):
            out.append(".*" if word[i + 1] == "*" else ".")
            i += 2
            continue
        out.append("\\" + c if not c.isalnum() and c != "_" else c)
        i += 1
    return "".join(out)


def plain(word: str) -> str:
    """A wildcard term's literal text (markers removed)."""
    return word.replace("\0*", "").replace("\0?", "")


def fields_of(node: Node) -> set[str | None]:
    """The field names a query names (None: the default field)."""
    if isinstance(node, Bool):
        out: set[str | None] = set()
        for _, n in node.clauses:
            out |= fields_of(n)  # type: ignore[arg-type]
        return out
    if isinstance(node, MatchAll):
        return set()
    return {node.field}
