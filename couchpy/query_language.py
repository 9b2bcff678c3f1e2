"""The name of the query server a design document's `language` member names.

CouchDB finds the query server of a language by its name in any case (`"JavaScript"` runs as
`"javascript"` does: the name is upcased into the environment variable that configures it), so
a design document written with the language's usual capitals works. Mango's own design
documents say `"query"`, compared exactly, as mango compares it. Any other value is kept as it
was written, for the error that names it.

    canonical("JavaScript") == "javascript"
    canonical("erlang") == "erlang"
"""

from __future__ import annotations

from typing import Any

# the languages couchpy has a query server for
RUNNABLE = ("javascript", "python")


def canonical(language: Any) -> Any:
    """A runnable language's name in lower case; anything else as it is."""
    if isinstance(language, str) and language.lower() in RUNNABLE:
        return language.lower()
    return language
