"""PlanStreamParser on compact plans ([agent_id, [[act, *values], ...]]): the same shapes,
incremental emission, bad elements, ids, truncation and bounds as the verbose tests in
test_stream_parser.py, and both formats in one answer."""

from __future__ import annotations

import json

import pytest

from game.rules.steps import MAX_STEPS, Attack, MoveTo, Reload, Scan, TakeCover, Wait
from planner.schema import AgentPlan
from planner.stream import (
    MAX_NESTING,
    ParsedPlan,
    ParseResult,
    ParseSummary,
    PlanStreamParser,
    RejectedElement,
)

BATCH = '{"plans":[[3,[["MoveTo",4,7],["Attack",9]]],[5,[["TakeCover",6,2],["Reload"]]]]}'
PLAN_3 = AgentPlan(agent_id=3, steps=(MoveTo(x=4, y=7), Attack(target_id=9)))
PLAN_5 = AgentPlan(agent_id=5, steps=(TakeCover(x=6, y=2), Reload()))
WAIT = '["Wait"]'
SCAN = '["Scan"]'


def parse(
    text: str, expected: list[int] | None = None, chunk: int = 0, max_steps: int = MAX_STEPS
) -> tuple[list[ParseResult], ParseSummary]:
    parser = PlanStreamParser(expected, max_steps=max_steps)
    results: list[ParseResult] = []
    step = chunk or max(1, len(text))
    for start in range(0, len(text), step):
        results += parser.feed(text[start : start + step])
    return results, parser.finish()


def plans(results: list[ParseResult]) -> list[AgentPlan]:
    return [r.plan for r in results if isinstance(r, ParsedPlan)]


def rejected(results: list[ParseResult]) -> list[RejectedElement]:
    return [r for r in results if isinstance(r, RejectedElement)]


def element(agent_id: int, *steps: str) -> str:
    return f"[{agent_id},[{','.join(steps)}]]"


# --- shapes --------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [0, 1, 2, 7])
def test_wrapper_object(chunk: int) -> None:
    results, summary = parse(BATCH, [3, 5], chunk)
    assert plans(results) == [PLAN_3, PLAN_5]
    assert [r.raw for r in results] == [
        '[3,[["MoveTo",4,7],["Attack",9]]]',
        '[5,[["TakeCover",6,2],["Reload"]]]',
    ]
    assert summary == ParseSummary(missing=(), partial=None, rejected=(), trailing_error=None)


def test_split_at_every_byte_gives_the_same_results() -> None:
    whole = parse(BATCH, [3, 5])
    for k in range(len(BATCH) + 1):
        parser = PlanStreamParser([3, 5])
        results = parser.feed(BATCH[:k]) + parser.feed(BATCH[k:])
        assert (results, parser.finish()) == whole, k


def test_bare_array_pretty_printed() -> None:
    bare = json.dumps(json.loads(BATCH)["plans"], indent=2)
    results, summary = parse(bare, [3, 5], 3)
    assert plans(results) == [PLAN_3, PLAN_5]
    assert summary.trailing_error is None


def test_leading_prose_and_a_code_fence() -> None:
    text = (
        "Sure! For agents [3, 5] (use {x, y} tiles) here's the plan:\n"
        f"```json\n{BATCH}\n```\nLet me know {{if}} you need more [help]."
    )
    results, summary = parse(text, [3, 5], 1)
    assert plans(results) == [PLAN_3, PLAN_5]
    assert rejected(results) == [] and summary.trailing_error is None


def test_both_formats_in_one_answer() -> None:
    text = f'{{"plans":[{element(3, SCAN)},{{"agent_id":5,"steps":[{{"act":"Wait"}}]}}]}}'
    for chunk in (0, 1):
        results, summary = parse(text, [3, 5], chunk)
        assert plans(results) == [
            AgentPlan(agent_id=3, steps=(Scan(),)),
            AgentPlan(agent_id=5, steps=(Wait(),)),
        ]
        assert summary.missing == () and summary.trailing_error is None


def test_a_steps_text_value_with_brackets_is_just_a_string() -> None:
    results, _ = parse(f'[[1,[["Wait"],["Scan"]]],{element(2, WAIT)}]', [1, 2])
    assert [p.agent_id for p in plans(results)] == [1, 2]
    results, _ = parse('[[1,[["Wait"]],"]],[[["]]', [1])
    assert plans(results)[0].intent == "]],[[["  # a third value is the plan's intent
    results, _ = parse('[[1,[["Wait"]],"a","b"]]', [1])
    assert rejected(results)[0].agent_id == 1  # a fourth value: not a compact plan


# --- incremental emission ----------------------------------------------------------


def test_plan_is_emitted_the_moment_its_closing_bracket_arrives() -> None:
    first_close = BATCH.index("]]]") + 3  # end of agent 3's element
    parser = PlanStreamParser([3, 5])
    assert parser.feed(BATCH[: first_close - 1]) == []
    emitted = parser.feed(BATCH[first_close - 1 : first_close])
    assert [r.plan for r in emitted if isinstance(r, ParsedPlan)] == [PLAN_3]
    assert plans(parser.feed(BATCH[first_close:])) == [PLAN_5]


# --- bad elements ----------------------------------------------------------------------


def test_malformed_element_does_not_spoil_the_others() -> None:
    bad = '[2,[["Wait" 1]]]'  # missing comma, balanced
    text = f"[{element(1, WAIT)},{bad},{element(3, SCAN)}]"
    for chunk in (0, 1):
        results, summary = parse(text, [1, 2, 3], chunk)
        assert plans(results) == [
            AgentPlan(agent_id=1, steps=(Wait(),)),
            AgentPlan(agent_id=3, steps=(Scan(),)),
        ]
        [rej] = rejected(results)
        assert (rej.agent_id, rej.cause, rej.raw) == (2, "parse_error", bad)
        assert summary.missing == (2,) and summary.trailing_error is None


def test_mismatched_bracket_is_rejected_and_scanning_recovers() -> None:
    bad = '[2,[["Wait"}]]'
    results, summary = parse(f"[{bad},{element(3, SCAN)}]", [2, 3])
    assert [(r.agent_id, r.cause) for r in rejected(results)] == [(2, "parse_error")]
    assert plans(results) == [AgentPlan(agent_id=3, steps=(Scan(),))]
    assert summary.trailing_error is None


@pytest.mark.parametrize(
    ("broken", "raw"),
    [
        ('[2,[["Wait",', '[2,[["Wait"'),  # the step, steps and element never close
        ('[2,[["MoveTo",4,', '[2,[["MoveTo",4'),
        (f"[2,[{WAIT},", '[2,[["Wait"]'),  # the steps and element never close
        (f"[2,[{WAIT}],", '[2,[["Wait"]]'),  # the element never closes
    ],
)
def test_unclosed_element_followed_by_the_next_one(broken: str, raw: str) -> None:
    text = f"[{element(1, WAIT)},{broken}{element(3, SCAN)},{element(4, WAIT)}]"
    for chunk in (0, 1, 5):
        results, summary = parse(text, [1, 2, 3, 4], chunk)
        assert [p.agent_id for p in plans(results)] == [1, 3, 4]
        [rej] = rejected(results)
        assert (rej.agent_id, rej.cause, rej.raw) == (2, "parse_error", raw)
        assert rej.error == "element not closed before the next began"
        assert summary.missing == (2,) and summary.trailing_error is None


def test_unterminated_string_in_pretty_printed_output_recovers_at_the_line_end() -> None:
    text = f'[\n  [1, [["Wait", "oops]]],\n  {element(2, SCAN)}\n]'
    results, _ = parse(text, [1, 2])
    assert [(r.agent_id, r.cause) for r in rejected(results)] == [(1, "parse_error")]
    assert plans(results) == [AgentPlan(agent_id=2, steps=(Scan(),))]


def test_wrong_shape_is_a_validation_error_naming_what_is_wrong() -> None:
    text = (
        '[[1,[["MoveTo",1]]],[2,[]],[3,[["Fly"]]],[4,[["Attack",4,7]]],'
        f'[5,[["Scan",1]]],["x",[{WAIT}]],[{WAIT}],[6],[7,[{WAIT}],8,9],[8,"Wait"],[9,[5]]]'
    )
    results, _ = parse(text)
    assert [(r.agent_id, r.cause) for r in rejected(results)] == [
        (1, "validation_error"),
        (2, "validation_error"),
        (3, "validation_error"),
        (4, "validation_error"),
        (5, "validation_error"),
        (None, "validation_error"),
        (None, "validation_error"),
        (6, "validation_error"),
        (7, "validation_error"),
        (8, "validation_error"),
        (9, "validation_error"),
    ]
    errors = [r.error for r in rejected(results)]
    assert "steps.0.MoveTo.y" in errors[0]
    assert "at least 1 item" in errors[1]
    assert "Fly" in errors[2]
    assert "Attack takes 1 value (target_id), got 2" in errors[3]  # never guessed
    assert "Scan takes 0 values, got 1" in errors[4]
    assert "agent_id" in errors[5]
    shape = "a compact plan is [agent_id,[step,...]] or [agent_id,[step,...],intent]"
    assert errors[7] == errors[8] == errors[9] == shape
    assert "steps.0" in errors[10]


def test_numeric_string_agent_id_is_accepted_like_pydantic_does() -> None:
    results, _ = parse(f'[["4",[{WAIT}]]]', [4])
    assert plans(results) == [AgentPlan(agent_id=4, steps=(Wait(),))]


# --- ids -----------------------------------------------------------------------------


def test_duplicates_first_wins() -> None:
    results, summary = parse(f"[{element(3, WAIT)},{element(3, SCAN)}]", [3])
    assert plans(results) == [AgentPlan(agent_id=3, steps=(Wait(),))]
    [rej] = rejected(results)
    assert (rej.agent_id, rej.cause, rej.error) == (3, "validation_error", "duplicate agent_id 3")
    assert summary.missing == ()


def test_an_invalid_first_element_does_not_block_a_valid_duplicate() -> None:
    results, _ = parse(f"[[3,[]],{element(3, SCAN)}]", [3])
    assert plans(results) == [AgentPlan(agent_id=3, steps=(Scan(),))]


def test_ids_not_in_the_round_are_rejected_and_missing_ids_reported() -> None:
    results, summary = parse(f"[{element(1, WAIT)},{element(9, WAIT)}]", [4, 1, 2])
    assert plans(results) == [AgentPlan(agent_id=1, steps=(Wait(),))]
    [rej] = rejected(results)
    assert rej.agent_id == 9 and rej.cause == "validation_error"
    assert rej.error == "unknown agent_id 9 (this round: 1, 2, 4)"
    assert summary.missing == (2, 4)


# --- truncation ------------------------------------------------------------------------


def test_truncated_last_element_recovers_its_complete_steps() -> None:
    text = f'{{"plans":[{element(1, WAIT)},[2,[{WAIT},{SCAN},["Mo'
    for chunk in (0, 1):
        results, summary = parse(text, [1, 2, 3], chunk)
        assert plans(results) == [AgentPlan(agent_id=1, steps=(Wait(),))]
        assert summary.partial is not None and summary.partial.partial is True
        assert summary.partial.plan == AgentPlan(agent_id=2, steps=(Wait(), Scan()))
        assert summary.partial.raw == text[text.index("[2,") :]
        assert summary.missing == (3,)
        assert summary.rejected == ()
        assert summary.trailing_error == "the response ended inside the JSON (truncated)"


def test_a_truncated_step_with_too_many_values_spoils_the_partial() -> None:
    _, summary = parse('[[2,[["Wait"],["Attack",1,2],["Sc', [2])
    assert summary.partial is None
    [rej] = summary.rejected
    assert (rej.agent_id, rej.cause) == (2, "validation_error")


@pytest.mark.parametrize(
    ("text", "agent_id"),
    [
        ('[[2,[["Wa', 2),  # no step completed
        ("[[2,[", 2),
        ("[[2,", 2),
        ("[[2", None),  # the id itself may still be growing (2 -> 23)
        ("[[", None),
    ],
)
def test_truncated_element_without_a_step_and_an_id_is_rejected(
    text: str, agent_id: int | None
) -> None:
    results, summary = parse(text, [2])
    assert results == []
    assert summary.partial is None
    [rej] = summary.rejected
    assert (rej.agent_id, rej.cause) == (agent_id, "parse_error")
    assert rej.raw == text[1:]
    assert summary.missing == (2,)


def test_truncated_partial_still_obeys_duplicate_and_unknown_rules() -> None:
    _, summary = parse(f"[{element(2, WAIT)},[2,[{SCAN},", [2])
    assert summary.partial is None
    assert [r.error for r in summary.rejected] == ["duplicate agent_id 2"]
    _, summary = parse(f"[[7,[{SCAN},", [2])
    assert summary.partial is None
    assert [r.agent_id for r in summary.rejected] == [7]


def test_truncated_after_the_last_element_is_clean_but_reported() -> None:
    results, summary = parse(f'{{"plans":[{element(1, WAIT)}', [1])
    assert plans(results) == [AgentPlan(agent_id=1, steps=(Wait(),))]
    assert summary.partial is None and summary.rejected == ()
    assert summary.trailing_error == "the response ended inside the JSON (truncated)"


def test_truncated_at_every_byte_never_invents_a_step() -> None:
    for cut in range(len(BATCH) + 1):
        results, summary = parse(BATCH[:cut], [3, 5])
        got = plans(results) + ([summary.partial.plan] if summary.partial else [])
        for plan in got:
            want = {3: PLAN_3, 5: PLAN_5}[plan.agent_id].steps
            assert plan.steps == want[: len(plan.steps)], cut


# --- bounds --------------------------------------------------------------------------


def test_too_many_steps_keeps_the_first_max_steps() -> None:
    steps = [WAIT] * 3 + [SCAN] * 7 + ['["Nope",1,2,3]']
    results, _ = parse(f"[{element(1, *steps)}]", [1])
    [result] = results
    assert isinstance(result, ParsedPlan)
    assert result.plan.steps == (Wait(), Wait(), Wait(), Scan(), Scan(), Scan(), Scan(), Scan())
    assert result.dropped_steps == 3


def test_smaller_max_steps() -> None:
    results, _ = parse(f"[{element(1, WAIT, SCAN, WAIT)}]", [1], max_steps=2)
    [result] = results
    assert isinstance(result, ParsedPlan)
    assert result.plan.steps == (Wait(), Scan()) and result.dropped_steps == 1


@pytest.mark.parametrize(
    "deep",
    [
        # chatter nested past the bound inside a verbose element (json.loads would recurse)
        '[{"agent_id":1,"x":' + "[" * 5000 + "]" * 5000 + ',"steps":[{"act":"Wait"}]}',
        '[{"agent_id":1,"x":' + '{"a":' * 2000 + "1" + "}" * 2000 + ',"steps":[{"act":"Wait"}]}',
    ],
)
def test_an_element_nested_past_the_bound_is_rejected_not_decoded(deep: str) -> None:
    text = deep + f",{element(2, SCAN)}]"
    for chunk in (0, 997):
        results, summary = parse(text, [1, 2], chunk)
        [rej] = rejected(results)
        assert (rej.agent_id, rej.cause) == (1, "parse_error")
        assert rej.error == f"nested more than {MAX_NESTING} levels deep"
        assert plans(results) == [AgentPlan(agent_id=2, steps=(Scan(),))]
        assert summary.missing == (1,)


def test_a_truncated_element_nested_past_the_bound_is_rejected_not_decoded() -> None:
    text = '[{"agent_id":1,"steps":[{"act":"Wait","x":' + "[" * 3000 + "]" * 3000 + "},{"
    results, summary = parse(text, [1])
    # Rejected by the feed() that went past the bound; nothing is left to recover.
    [rej] = rejected(results)
    assert rej.error == f"nested more than {MAX_NESTING} levels deep"
    assert summary.partial is None and summary.rejected == ()
    assert summary.missing == (1,)


def test_brackets_nested_deep_in_a_compact_element_never_recurse() -> None:
    # Every '[' inside a step breaks the element: linear work, no recursion, no crash.
    text = "[[1," + "[" * 20_000 + "]" * 20_000 + f",{element(2, WAIT)}]"
    parser = PlanStreamParser([1, 2])
    results = parser.feed(text)
    parser.finish()
    assert all(r.agent_id != 2 for r in rejected(results))
    assert parser.work <= 3 * len(text)


# --- linear work -------------------------------------------------------------------------


def _batch_text(count: int) -> str:
    elements = [[i, [["MoveTo", i, 2], ["Attack", i], ["Scan"]]] for i in range(count)]
    return "Here you go:\n```json\n" + json.dumps({"plans": elements}) + "\n```"


def _work(text: str, chunk: int) -> int:
    parser = PlanStreamParser(range(len(text)))
    for start in range(0, len(text), chunk):
        parser.feed(text[start : start + chunk])
    parser.finish()
    return parser.work


def test_work_is_linear_in_the_text() -> None:
    small, large = _batch_text(20), _batch_text(200)
    small_work, large_work = _work(small, 4), _work(large, 4)
    assert 9 * small_work <= large_work <= 11 * small_work
    assert large_work <= 2 * len(large)
    assert _work(large, 1) == _work(large, 4) == _work(large, len(large))
