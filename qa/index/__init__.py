"""The index on disk: generations of dense, BM25 and SQLite files behind one CURRENT pointer.

Readers (layout, manifest, generation, live, dense, vectors, lexical, db) never import the
writer (build); see docs/ARCHITECTURE.md.
"""
