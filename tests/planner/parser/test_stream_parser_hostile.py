"""PlanStreamParser against hostile text: what JSON is not, nesting no decoder should
follow, numbers Python will not convert; nothing escapes feed() or finish(), and no
result already found is lost.

(Issue 16, item 2. Over HTTP, through the planner thread: tests/test_faults_hostile.py.)
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from game.rules.steps import Scan, Wait
from planner.schema import AgentPlan
from planner.stream import (
    MAX_NESTING,
    ParsedPlan,
    ParseResult,
    ParseSummary,
    PlanStreamParser,
    RejectedElement,
)

SCAN = '{"act":"Scan"}'
WAIT = '{"act":"Wait"}'
DEEP = 100_000
ISSUE_TEXT = '{"plans":[{"agent_id":2,"steps":' + "[" * DEEP + "]" * DEEP + "}]}"
"""The answer from issue 16 that froze the game loop and labelled agents heuristic_error."""


def element(agent_id: int, *steps: str) -> str:
    return f'{{"agent_id":{agent_id},"steps":[{",".join(steps)}]}}'


def parse(
    text: str, expected: list[int] | None = None, chunk: int = 0
) -> tuple[list[ParseResult], ParseSummary]:
    parser = PlanStreamParser(expected)
    results: list[ParseResult] = []
    step = chunk or max(1, len(text))
    for start in range(0, len(text), step):
        results += parser.feed(text[start : start + step])
    return results, parser.finish()


def plans(results: list[ParseResult]) -> list[AgentPlan]:
    return [r.plan for r in results if isinstance(r, ParsedPlan)]


def rejected(results: list[ParseResult]) -> list[tuple[int | None, str]]:
    return [(r.agent_id, r.cause) for r in results if isinstance(r, RejectedElement)]


# --- NaN, Infinity, numbers too long -----------------------------------------------------


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(
    "template",
    [
        '[{{"agent_id":1,"steps":[{{"act":"MoveTo","x":{c},"y":2}}]}}]',  # a step's value
        '[{{"agent_id":1,"steps":[{{"act":"Scan"}}],"confidence":{c}}}]',  # a field not read
        '[[1,[["Scan"]],{c}]]',  # compact, past the plan's two values
        '[[1,[["MoveTo",{c},2]]]]',  # compact, a step's value
    ],
)
def test_nan_and_infinity_are_not_json(template: str, constant: str) -> None:
    text = template.format(c=constant)
    results, summary = parse(text, [1])
    assert plans(results) == []
    [rej] = [r for r in results if isinstance(r, RejectedElement)]
    assert rej.cause == "parse_error"
    assert f"{constant} is not JSON" in rej.error
    assert summary.missing == (1,)


def test_nan_in_a_truncated_elements_step_is_not_recovered() -> None:
    text = '[{"agent_id":1,"steps":[{"act":"Scan"},{"act":"MoveTo","x":NaN,"y":2},{"act"'
    _, summary = parse(text, [1])
    assert summary.partial is None
    [rej] = summary.rejected
    assert (rej.agent_id, rej.cause) == (1, "parse_error")
    assert "NaN is not JSON" in rej.error


@pytest.mark.parametrize("agent_id", ["NaN", "Infinity"])
def test_nan_as_an_agent_id_reads_as_no_id(agent_id: str) -> None:
    results, _ = parse(f'[{{"agent_id":{agent_id},"steps":[{SCAN}]}}]', [1])
    assert rejected(results) == [(None, "parse_error")]


def test_a_number_too_long_to_convert_is_a_parse_error_not_an_exception() -> None:
    # Python refuses to turn more than 4300 digits into an int (a ValueError that is not
    # a JSONDecodeError): in a value, as an agent id, and in a truncated element.
    long = "1" * 5000
    text = (
        f'[{{"agent_id":1,"steps":[{{"act":"MoveTo","x":{long},"y":2}}]}},'
        f'{{"agent_id":{long},"steps":[{SCAN}]}},'
        f'[3,[["Attack",{long}]]],'
        f"{element(4, WAIT)}]"
    )
    results, summary = parse(text, [1, 2, 3, 4])
    assert rejected(results) == [(1, "parse_error"), (None, "parse_error"), (3, "parse_error")]
    assert plans(results) == [AgentPlan(agent_id=4, steps=(Wait(),))]
    assert summary.missing == (1, 2, 3)
    # finish() on a truncated element whose id is that number
    _, summary = parse(f'[{{"agent_id":{long},"steps":[{SCAN},{{', [1])
    [rej] = summary.rejected
    assert (rej.agent_id, rej.cause) == (None, "parse_error")


# --- nesting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # the id itself nested deep (it used to be decoded to read the rejected element's id)
        '[{"agent_id":' + "[" * 2000 + "1" + "]" * 2000 + f',"steps":[{SCAN}]}}]',
        "[[" + "[" * 2000 + "]" * 2000 + ',[["Scan"]]]]',
        # truncated inside the nesting: finish() has nothing to decode
        '[{"agent_id":' + "[" * 2000,
        '{"agent_id":1,"steps":[{"act":"Scan","x":' + "{" * 2000,
        '[{"agent_id":1,"steps":' + "[" * 2000,
        # a bare plan object, not in an array
        '{"agent_id":1,"steps":[' + '{"a":' * 3000 + "1" + "}" * 3000 + "]}",
    ],
)
def test_no_nesting_makes_feed_or_finish_raise(text: str) -> None:
    for chunk in (0, 1000, 7):
        results, summary = parse(text, [1], chunk)
        assert plans(results) == []
        assert summary.missing == (1,)


def test_the_issue_answer_is_rejected_at_once_and_skipped_in_runs() -> None:
    parser = PlanStreamParser([2, 4])
    # The chunk that goes one level past the bound returns the rejection already.
    head = '{"plans":[{"agent_id":2,"steps":' + "[" * (MAX_NESTING + 1)
    [rej] = parser.feed(head)
    assert isinstance(rej, RejectedElement)
    assert (rej.agent_id, rej.cause) == (2, "parse_error")
    assert rej.error == f"nested more than {MAX_NESTING} levels deep"
    assert rej.raw == head[len('{"plans":[') :]
    # The rest of the element costs a step per run of brackets, not per character, and
    # neither is kept nor decoded; the plan after it comes out as usual.
    steps_before = parser.steps
    rest = "[" * DEEP + "]" * (DEEP + MAX_NESTING + 1) + "}" + f",{element(4, SCAN)}]}}"
    [after] = parser.feed(rest)
    assert isinstance(after, ParsedPlan) and after.plan.agent_id == 4
    skipping = parser.steps - steps_before
    assert skipping < 100, skipping
    assert parser.work <= len(head) + len(rest) + len(element(4, SCAN))
    summary = parser.finish()
    assert summary == ParseSummary(missing=(2,), partial=None, rejected=(), trailing_error=None)


@pytest.mark.parametrize("chunk", [0, 4096, 64])
def test_the_issue_answer_costs_a_bounded_number_of_steps_per_chunk(chunk: int) -> None:
    parser = PlanStreamParser([2])
    step = chunk or len(ISSUE_TEXT)
    worst = 0
    results: list[ParseResult] = []
    for start in range(0, len(ISSUE_TEXT), step):
        before = parser.steps
        results += parser.feed(ISSUE_TEXT[start : start + step])
        worst = max(worst, parser.steps - before)
    # Without the skipping, a chunk costs a step per character (200,000 for the whole).
    assert worst < 100, worst
    assert rejected(results) == [(2, "parse_error")]
    assert parser.finish().trailing_error is None


def test_strings_inside_the_skipped_rest_are_strings() -> None:
    # Brackets and quotes inside a string in the rejected part do not count.
    deep = "[" * 40 + r'"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]] \" ]]"' + "]" * 40
    text = f'[{{"agent_id":1,"steps":{deep}}},{element(2, SCAN)}]'
    for chunk in (0, 1, 3, 50):
        results, summary = parse(text, [1, 2], chunk)
        assert rejected(results) == [(1, "parse_error")]
        assert plans(results) == [AgentPlan(agent_id=2, steps=(Scan(),))]
        assert summary.trailing_error is None


def test_a_deep_top_level_plan_object_is_skipped_to_its_end() -> None:
    text = '{"agent_id":1,"steps":' + "[" * 50 + "]" * 50 + "}\n" + element(2, SCAN)
    results, summary = parse(text, [1, 2])
    assert rejected(results) == [(1, "parse_error")]
    assert plans(results) == [AgentPlan(agent_id=2, steps=(Scan(),))]
    assert summary.missing == (1,)


def test_a_wrapper_deep_before_its_plans_key_still_yields_the_plans() -> None:
    # Deep chatter in the wrapper (not a plan: no agent_id) is not a reason to skip it.
    text = '{"note":' + "[" * 50 + "]" * 50 + f',"plans":[{element(1, SCAN)}]}}'
    results, summary = parse(text, [1])
    assert plans(results) == [AgentPlan(agent_id=1, steps=(Scan(),))]
    assert summary.trailing_error is None


def test_a_truncated_answer_inside_the_skipped_rest_says_truncated() -> None:
    _, summary = parse('{"plans":[{"agent_id":2,"steps":' + "[" * 500, [2])
    assert summary.trailing_error == "the response ended inside the JSON (truncated)"
    assert summary.rejected == ()  # feed() already rejected it


# --- nothing found is lost ---------------------------------------------------------------


def test_results_found_in_a_chunk_come_out_whatever_follows_in_it() -> None:
    bad = [
        '{"agent_id":2,"steps":[{"act":"Scan"}],"x":NaN}',
        '{"agent_id":3,"steps":' + "[" * 5000 + "]" * 5000 + "}",
        '{"agent_id":4,"steps":[{"act":"MoveTo","x":' + "9" * 5000 + ',"y":1}]}',
        '{"agent_id":' + "[" * 5000 + "]" * 5000 + "}",
    ]
    text = "[" + ",".join([element(1, SCAN), *bad, element(5, WAIT)]) + "]"
    parser = PlanStreamParser([1, 2, 3, 4, 5])
    results = parser.feed(text)  # one chunk holds them all
    assert plans(results) == [
        AgentPlan(agent_id=1, steps=(Scan(),)),
        AgentPlan(agent_id=5, steps=(Wait(),)),
    ]
    assert rejected(results) == [
        (2, "parse_error"),
        (3, "parse_error"),
        (4, "parse_error"),
        (None, "parse_error"),
    ]
    assert parser.finish().missing == (2, 3, 4)


# --- property: any depth, any chunks -----------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    depth=st.integers(0, 3 * MAX_NESTING),
    opener=st.sampled_from(["[", '{"a":']),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_any_depth_is_a_plan_or_a_parse_error_and_chunks_change_nothing(
    depth: int, opener: str, cuts: list[int]
) -> None:
    closer = "]" if opener == "[" else "}"
    chatter = opener * depth + "0" + closer * depth
    text = f'[{{"agent_id":1,"steps":[{SCAN}],"x":{chatter}}},{element(2, WAIT)}]'
    whole, summary = parse(text, [1, 2])
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    parser = PlanStreamParser([1, 2])
    pieces: list[ParseResult] = []
    for a, b in itertools.pairwise(bounds):
        pieces += parser.feed(text[a:b])
    assert pieces == whole and parser.finish() == summary
    assert AgentPlan(agent_id=2, steps=(Wait(),)) in plans(whole)
    # MAX_NESTING counts the levels inside an element: the chatter's openers are those.
    if depth > MAX_NESTING:
        assert rejected(whole) == [(1, "parse_error")]
    else:
        assert AgentPlan(agent_id=1, steps=(Scan(),)) in plans(whole)
    json.dumps([repr(r) for r in whole])  # every result is plain data
