"""The index on disk, storage only: generations of dense, BM25 and SQLite files behind one
CURRENT pointer.

Readers (layout, manifest, generation, live, dense, vectors, lexical, db) never import the
writer (writer: arrays and rows -> a new generation); nothing here reads corpus files,
chunks or embeds (that is qa.build). See docs/ARCHITECTURE.md.
"""
