"""The simulated LLM server: a pure cost model, its backend and its loopback HTTP server."""
