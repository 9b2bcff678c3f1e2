"""Nouveau's analyzer names as Tantivy text analyzers.

Lucene's analyzers have no exact Tantivy twins; each name gets the nearest pipeline: tokenise on
non-alphanumeric characters (Lucene's standard tokenizer splits much the same for Latin scripts),
drop very long tokens, lowercase, and for a language name that language's Snowball stemmer.
`keyword` keeps the value whole, `whitespace` splits on whitespace only and keeps case (as Lucene's
WhitespaceAnalyzer does). docs/search.md lists the differences.
"""

from __future__ import annotations

import tantivy

# Nouveau name -> Tantivy's Snowball stemmer language
_STEMMED = {
    "arabic": "arabic", "danish": "danish", "dutch": "dutch", "english": "english",
    "finnish": "finnish", "french": "french", "german": "german", "hungarian": "hungarian",
    "italian": "italian", "norwegian": "norwegian", "portugese": "portuguese",
    "portuguese": "portuguese", "romanian": "romanian", "russian": "russian", "spanish": "spanish",
    "swedish": "swedish", "turkish": "turkish",
}

MAX_TOKEN = 255  # Lucene's StandardAnalyzer default maxTokenLength


def tokenizer_name(analyzer: str) -> str:
    return "nv_" + analyzer


def build(analyzer: str) -> tantivy.TextAnalyzer:
    if analyzer == "keyword":
        return tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw()).build()
    if analyzer == "whitespace":
        return tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()
    b = (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
         .filter(tantivy.Filter.remove_long(MAX_TOKEN))
         .filter(tantivy.Filter.lowercase()))
    if analyzer == "simple_asciifolding":
        b = b.filter(tantivy.Filter.ascii_fold())
    lang = _STEMMED.get(analyzer)
    if lang is not None:
        b = b.filter(tantivy.Filter.stemmer(lang))
    return b.build()


def lowercases(analyzer: str) -> bool:
    """Whether the analyzer lowercases: wildcard and fuzzy terms are not analysed (Lucene
    normalises them only), so they are lowercased here for the analyzers that lowercase."""
    return analyzer not in ("keyword", "whitespace")


def tokens(analyzer: str, text: str) -> list[str]:
    """What `analyzer` makes of `text`, in order (`_nouveau_analyze`)."""
    return build(analyzer).analyze(text)
