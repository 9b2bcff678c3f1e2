"""couchpy's benchmarks: `python -m benchmarks.run` (own suite) and `benchmarks.side_by_side`.

See docs/benchmarks.md.
"""
