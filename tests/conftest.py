"""Every test runs without a display, sound card or Ollama of the developer's."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
# A local Ollama must not change what `--backend auto` picks in tests.
os.environ["OLLAMA_HOST"] = "http://127.0.0.1:9"
