"""Text analysis for memory search: tokenising, stemming, language detection, snippets."""
