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

`think`: the body fields that switch a reasoning model's thinking on or off, where the
server has them (nothing is sent for `auto`): Ollama's `think`, `chat_template_kwargs:
{"enable_thinking": ...}` for vLLM, SGLang and llama-server (Qwen3-style templates), and
OpenAI's `reasoning_effort`. Ollama silently ignores `format` when `think: false` is sent
to some thinking models (ollama/ollama#14645, #15260; omitting `think` keeps the format
working), so with a schema its `off` is left out (`think_off_with_schema`): the thinking
that may then come is kept apart from the plan text anyway.

`response_formats`: how the schema is sent, tried in order until the server accepts
one (then remembered): llama-cpp-python answers HTTP 500 to `json_schema` and takes
`{"type": "json_object", "schema": ...}`; LM Studio refuses `json_object`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from planner.backends.base import Capabilities, Think
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
    think: Mapping[Think, Mapping[str, Any]] = field(default_factory=dict)
    """Body fields for `--think on` / `off` (none: the server has no switch)."""
    think_off_with_schema: bool = True
    """False where sending `off` together with a schema makes the server drop the schema."""

    def think_fields(self, think: Think, with_schema: bool) -> dict[str, Any]:
        """The body fields that ask for `think` (empty for auto or where unsupported)."""
        if think == "off" and with_schema and not self.think_off_with_schema:
            return {}
        return dict(self.think.get(think, {}))


def _template_thinking(on: bool) -> dict[str, Any]:
    return {"chat_template_kwargs": {"enable_thinking": on}}


TEMPLATE_THINK: dict[Think, dict[str, Any]] = {
    "on": _template_thinking(True),
    "off": _template_thinking(False),
}


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
            think={"on": {"think": True}, "off": {"think": False}},
            think_off_with_schema=False,
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
            think=TEMPLATE_THINK,
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
            think=TEMPLATE_THINK,
        ),
        Profile(
            "sglang",
            "SGLang",
            # reasoning as reasoning_content; xgrammar or llguidance behind json_schema
            Capabilities(
                json_schema=True,
                schema_outside_prompt_cache=True,
                cached_tokens=True,
                plan_format="compact",
            ),
            think=TEMPLATE_THINK,
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
            think={"on": {"reasoning_effort": "medium"}, "off": {"reasoning_effort": "minimal"}},
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

OWNED_BY_PROFILE: dict[str, str] = {
    "llamacpp": "llamacpp",
    "vllm": "vllm",
    "sglang": "sglang",
    "me": "llamacpp_python",
}
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
