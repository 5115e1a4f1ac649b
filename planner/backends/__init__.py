"""LLM backends: each streams text deltas for a request through one narrow seam."""
