"""The CouchDB replication protocol: endpoints, jobs, scheduler and the _replicator database."""
