"""The one base of every wire model (`wire_ollama`, `wire_openai`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Lenient(BaseModel):
    """A message on the wire, validated field by field; fields it does not model are
    ignored. Both ends need that: real clients send many fields the sim does not model
    (tools, images, top_p, ...), and real servers answer with many the clients do not
    read (created_at, logprobs, system_fingerprint, ...)."""

    model_config = ConfigDict(extra="ignore")
