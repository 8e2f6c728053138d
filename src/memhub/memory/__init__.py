"""The memory layer: blocks, text analysis and the search index, all derived from the store."""
