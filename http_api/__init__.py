"""The aiohttp application serving CouchDB's HTTP API over the couchpy engine."""
