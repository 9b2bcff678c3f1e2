"""Map/reduce views: built-in reduces, index storage and queries (see the modules of this package)."""
