"""Attachments: binary bodies carried by documents, stored content-addressed beside them.

- codec: digests, base64, gzip, compressible types
- blobstore: chunked, deduplicated bodies in the database's LMDB environment
- hooks: what the engine calls on every write (prepare, finalize) and on compaction
- access: per-database BlobStore and settings
"""
