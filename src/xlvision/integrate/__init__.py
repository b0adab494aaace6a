"""Integration: merging per-language models into one, and the methods built on it."""
