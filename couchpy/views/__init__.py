"""Map/reduce views: CouchDB design-document views over LMDB.

Modules, from the bottom up:
- builtin_reduce.py -- `_sum`, `_count`, `_stats`, `_approx_count_distinct`, native, with rereduce;
- tree.py           -- stored partial reductions so any key range reduces in O(log n) reads;
- ddoc.py           -- design documents as index definitions (views, options, content signature);
- index.py          -- one LMDB environment per signature, built incrementally from the by-sequence
                       index with map functions run in query-server workers (couchpy.query_server);
- args.py, query.py -- CouchDB's query parameters and their evaluation on encoded keys
                       (couchpy.collate);
- manager.py        -- the API the HTTP layer and other subsystems use (query, info, cleanup,
                       design-document validation, `_changes` filter helpers).

Mango JSON indexes (couchpy.mango) are `language: "query"` design documents served by the same
index machinery, with a native mapper instead of a query server.
"""
