"""News and files from outside into the corpus folder: fetch, extract, store, feeds, uploads."""
