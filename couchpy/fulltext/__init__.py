"""Full-text search with CouchDB's Nouveau API, served by an embedded Tantivy index."""
