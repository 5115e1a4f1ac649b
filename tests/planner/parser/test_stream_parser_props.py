"""Property test: the streaming parser agrees with json.loads on generated batches."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from game.rules.steps import POSITION_ACTS, SIMPLE_ACTS, TARGET_ACTS
from planner.schema import AgentPlan
from planner.stream import ParsedPlan, ParseResult, PlanStreamParser, RejectedElement

# Characters that break naive scanners: JSON structure, quotes, escapes, control
# characters, non-BMP (surrogate pairs once escaped), combining marks, RTL, CR/LF.
ADVERSARIAL = st.text(
    alphabet=st.one_of(
        st.sampled_from("{}[]\",:\\/'`\n\r\t\x00\x1f\u2028\u0301\u202e😀🧨é"),
        st.characters(exclude_categories=["Cs"]),
    ),
    max_size=12,
)
INTS = st.integers(min_value=-3, max_value=40)


def step_strategy() -> st.SearchStrategy[dict[str, Any]]:
    def build(act: str, extra: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
        fields: dict[str, Any] = {"act": st.just(act)}
        if act in {cls.model_fields["act"].default for cls in POSITION_ACTS}:
            fields |= {"x": INTS, "y": INTS}
        elif act in {cls.model_fields["act"].default for cls in TARGET_ACTS}:
            fields["target_id"] = INTS
        return st.fixed_dictionaries(fields).map(lambda d: {**d, **extra})

    acts = [cls.model_fields["act"].default for cls in (*POSITION_ACTS, *TARGET_ACTS, *SIMPLE_ACTS)]
    return st.tuples(
        st.sampled_from(acts),
        st.dictionaries(
            st.sampled_from(["why", "}{", '"', "agent_id", "steps", "plans"]), ADVERSARIAL
        ),
    ).flatmap(lambda t: build(*t))


@st.composite
def batches(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    ids = draw(st.lists(st.integers(0, 50), min_size=0, max_size=5, unique=True))
    elements: list[dict[str, Any]] = []
    for agent_id in ids:
        element: dict[str, Any] = {
            "agent_id": agent_id,
            "steps": draw(st.lists(step_strategy(), min_size=0, max_size=3)),
        }
        if draw(st.booleans()):
            element["note"] = draw(ADVERSARIAL)
        elements.append(element)
    indent = draw(st.sampled_from([None, 0, 2]))
    ensure_ascii = draw(st.booleans())
    root: Any = {"plans": elements} if draw(st.booleans()) else elements
    body = json.dumps(root, indent=indent, ensure_ascii=ensure_ascii)
    prose = draw(st.text(alphabet=st.characters(blacklist_characters="{["), max_size=20))
    fence = draw(st.booleans())
    text = f"{prose}\n```json\n{body}\n```\n" if fence else prose + body
    return text, elements


def chunked(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches(), st.lists(st.integers(0, 10_000), max_size=30))
def test_parser_matches_json_loads(
    batch: tuple[str, list[dict[str, Any]]], cuts: list[int]
) -> None:
    text, elements = batch
    parser = PlanStreamParser(expected_ids=[e["agent_id"] for e in elements])
    results: list[ParseResult] = []
    for chunk in chunked(text, cuts):
        results += parser.feed(chunk)
    summary = parser.finish()

    assert len(results) == len(elements)
    missing = []
    for result, element in zip(results, elements, strict=True):
        assert json.loads(result.raw) == element  # the exact element text, nothing more
        if element["steps"]:
            assert isinstance(result, ParsedPlan)
            assert result.plan == AgentPlan.model_validate(element)
        else:  # an empty plan is not a plan
            assert isinstance(result, RejectedElement)
            assert (result.agent_id, result.cause) == (element["agent_id"], "validation_error")
            missing.append(element["agent_id"])
    assert summary.missing == tuple(sorted(missing))
    assert summary.partial is None and summary.rejected == ()
    if elements:
        assert summary.trailing_error is None
    else:  # `{"plans": []}` is a complete document; a bare `[]` may as well be prose
        wrapped = '"plans"' in text
        assert summary.trailing_error == (
            None if wrapped else "no JSON plans found in the response"
        )


@settings(max_examples=150, deadline=None)
@given(batches(), st.data())
def test_truncated_anywhere_keeps_what_closed_and_never_crashes(
    batch: tuple[str, list[dict[str, Any]]], data: st.DataObject
) -> None:
    text, elements = batch
    cut = data.draw(st.integers(0, len(text)))
    whole = PlanStreamParser().feed(text)
    parser = PlanStreamParser()
    results = parser.feed(text[:cut])
    summary = parser.finish()
    assert results == whole[: len(results)]
    if summary.partial is not None:
        assert summary.partial.partial
        source = elements[len(results)]
        assert summary.partial.plan.agent_id == source["agent_id"]
        kept = summary.partial.plan.steps
        assert kept == AgentPlan.model_validate(source).steps[: len(kept)]
