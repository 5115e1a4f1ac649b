"""Capability profiles per server kind, as data (pydantic-ai style), not if-chains.

`schema_outside_prompt_cache`: local engines (llama.cpp, vLLM, Ollama, LM Studio)
compile the JSON schema into a grammar that is not part of the cached prompt
prefix, so they get the per-request schema pinning agent ids and plan count.
OpenAI's schema is part of the cached prefix, so it gets the static one.

`plan_format`: the local engines get the compact plan format (about half the output
tokens; its schema's `prefixItems` tuples become grammar rules: both llama.cpp
converters, llama-server's and llama-cpp-python's, compile a `prefixItems` array with
no `items` as a fixed tuple); OpenAI (strict mode refuses `prefixItems`) and unknown
servers get verbose.

`response_formats`: how the schema is sent, tried in order until the server accepts
one (then remembered): llama-cpp-python answers HTTP 500 to `json_schema` and takes
`{"type": "json_object", "schema": ...}`; LM Studio refuses `json_object`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import httpx

from planner.backends.base import Capabilities
from planner.errors import ConfigError

ResponseFormat = Literal["json_schema", "json_object_schema", "json_object", "none"]
"""`response_format` as sent: `{"type": "json_schema", "json_schema": {...}}`,
`{"type": "json_object", "schema": ...}`, `{"type": "json_object"}`, or none at all."""
FORMAT_CHAIN: tuple[ResponseFormat, ...] = (
    "json_schema",
    "json_object_schema",
    "json_object",
    "none",
)
"""An unknown server's formats, best first."""


@dataclass(frozen=True)
class Profile:
    name: str
    label: str
    """For describe(): 'OpenAI-compatible (llama.cpp) at ...'."""
    capabilities: Capabilities
    max_tokens_field: str = "max_tokens"
    """OpenAI itself deprecated `max_tokens` in favour of `max_completion_tokens`."""
    response_formats: tuple[ResponseFormat, ...] = FORMAT_CHAIN
    """The `response_format`s to try, best first; the first one accepted is kept."""


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "ollama",
            "Ollama",
            Capabilities(
                json_schema=True,
                schema_outside_prompt_cache=True,
                cached_tokens=False,
                plan_format="compact",
                grammar_whitespace=22,  # llama.cpp's converter
            ),
        ),
        Profile(
            "llamacpp",
            "llama.cpp",
            # timings.cache_n reports the prefix-cache hit
            Capabilities(
                json_schema=True,
                schema_outside_prompt_cache=True,
                cached_tokens=True,
                plan_format="compact",
                grammar_whitespace=22,
            ),
        ),
        Profile(
            "llamacpp_python",
            "llama-cpp-python",
            # no usage chunk, no timings; its converter ignores minimum/maximum (the
            # pinned schema uses enums) and allows one space between tokens
            Capabilities(
                json_schema=True,
                schema_outside_prompt_cache=True,
                cached_tokens=False,
                plan_format="compact",
                grammar_whitespace=1,
            ),
            response_formats=("json_object_schema", "json_object", "none"),
        ),
        Profile(
            "vllm",
            "vLLM",
            # usage.prompt_tokens_details.cached_tokens (with prefix caching enabled)
            Capabilities(
                json_schema=True,
                schema_outside_prompt_cache=True,
                cached_tokens=True,
                plan_format="compact",
            ),
        ),
        Profile(
            "lmstudio",
            "LM Studio",
            Capabilities(
                json_schema=True,
                schema_outside_prompt_cache=True,
                cached_tokens=False,
                plan_format="compact",
            ),
            # "'response_format.type' must be 'json_schema' or 'text'"
            response_formats=("json_schema", "none"),
        ),
        Profile(
            "openai",
            "OpenAI",
            Capabilities(
                json_schema=True,
                schema_outside_prompt_cache=False,
                cached_tokens=True,
                plan_format="verbose",
            ),
            max_tokens_field="max_completion_tokens",
            response_formats=("json_schema", "json_object", "none"),
        ),
        Profile(
            "generic",
            "generic",
            # unknown engine: static schema (safe for any cache), format fallback on 400
            Capabilities(
                json_schema=True,
                schema_outside_prompt_cache=False,
                cached_tokens=False,
                plan_format="verbose",
            ),
        ),
    )
}

OWNED_BY_PROFILE: dict[str, str] = {"llamacpp": "llamacpp", "vllm": "vllm", "me": "llamacpp_python"}
"""`/v1/models` `owned_by` values that identify the engine."""
HOST_PROFILE: dict[str, str] = {"api.openai.com": "openai"}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(PROFILES)
        raise ConfigError(f"unknown server profile {name!r} (known: {known})") from None


def profile_for_url(url: str) -> str | None:
    """A profile known from the host alone, else None (ask /v1/models)."""
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL:
        return None
    return HOST_PROFILE.get(host)


def profile_for_owners(owners: Iterable[str]) -> str:
    """The profile named by the first recognised `owned_by`, else generic."""
    for owner in owners:
        found = OWNED_BY_PROFILE.get(owner.strip().lower())
        if found is not None:
            return found
    return "generic"
