"""Indexing: the node client, block fetching and processing, storage layout, mempool."""
