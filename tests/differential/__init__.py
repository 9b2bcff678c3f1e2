"""Differential testing: the same request sequences sent to couchpy and to Apache CouchDB 3.4.3."""
