"""Fuzzing the stream parser: arbitrary text, and valid batches (verbose and compact)
cut and corrupted.

Properties, whatever the text and however it is chunked:
- nothing escapes: feed() and finish() return, every result is a ParsedPlan or a
  RejectedElement, and each agent id gets at most one plan;
- streaming changes nothing: the results are the same fed whole or in random chunks;
- nothing valid is altered: a plan that comes out for an agent whose element survived
  intact is exactly the element that was sent;
- nothing valid is lost: an intact element before the first damage always comes out,
  and so does every intact element when the damage stays inside damaged elements and
  leaves the JSON's strings and brackets where they were (keys, values, colons, commas
  broken). Damage to the wrapper (`{"plans": [`), or a quote or bracket too many or too
  few, may hide what follows it: that is the price of a single linear pass, and the
  agents hidden so are re-requested or fall back like any missing agent.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from game.rules.steps import POSITION_ACTS, SIMPLE_ACTS, TARGET_ACTS
from planner.schema import AgentPlan, PlanFormat, step_fields
from planner.stream import ParsedPlan, ParseResult, PlanStreamParser, RejectedElement

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NASTY = "{}[]\",:\\/'`\n\r\t\x00\u2028\u0301😀 0123456789-eE.agent_idstepsplans"
ARBITRARY = st.text(
    alphabet=st.one_of(st.sampled_from(NASTY), st.characters(exclude_categories=["Cs"])),
    max_size=400,
)
IDS = (111, 222, 333, 444, 555, 666, 777)
"""Agent ids that one or two character edits cannot turn into one another."""


def acts(classes: tuple[type, ...]) -> list[str]:
    return [cls.model_fields["act"].default for cls in classes]  # type: ignore[attr-defined]


def step() -> st.SearchStrategy[dict[str, Any]]:
    coord = st.integers(0, 40)
    return st.one_of(
        st.builds(
            lambda a, x, y: {"act": a, "x": x, "y": y},
            st.sampled_from(acts(POSITION_ACTS)),
            coord,
            coord,
        ),
        st.builds(
            lambda a, t: {"act": a, "target_id": t}, st.sampled_from(acts(TARGET_ACTS)), coord
        ),
        st.builds(lambda a: {"act": a}, st.sampled_from(acts(SIMPLE_ACTS))),
    )


@dataclass(frozen=True)
class Batch:
    text: str
    elements: list[dict[str, Any]]
    """Each element as a verbose plan (the plan it stands for, whatever its format)."""
    spans: list[tuple[int, int]]
    """Each element's [start, end) in `text`."""


def compact(element: dict[str, Any]) -> list[Any]:
    steps = [[s["act"], *(s[f] for f in step_fields(s["act"]))] for s in element["steps"]]
    return [element["agent_id"], steps]


@st.composite
def batches(draw: st.DrawFn, fmt: PlanFormat = "verbose") -> Batch:
    ids = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=5, unique=True))
    elements = [
        {"agent_id": i, "steps": draw(st.lists(step(), min_size=1, max_size=4))} for i in ids
    ]
    indent = draw(st.sampled_from([None, 2]))
    written = elements if fmt == "verbose" else [compact(e) for e in elements]
    pieces = [json.dumps(e, indent=indent) for e in written]
    sep = ",\n" if indent else ","
    head = draw(st.sampled_from(['{"plans":[', "[", 'Sure!\n```json\n{"plans": [\n']))
    tail = "]" if head == "[" else "]}"
    spans: list[tuple[int, int]] = []
    at = len(head)
    for piece in pieces:
        spans.append((at, at + len(piece)))
        at += len(piece) + len(sep)
    return Batch(head + sep.join(pieces) + tail, elements, spans)


@dataclass(frozen=True)
class Edit:
    at: int
    kind: str  # insert | delete | replace
    char: str


EDIT_CHARS = st.sampled_from('{}[]",:\\ x1\n')


def edits(length: int) -> st.SearchStrategy[list[Edit]]:
    one = st.builds(
        Edit,
        st.integers(0, max(0, length - 1)),
        st.sampled_from(["insert", "delete", "replace"]),
        EDIT_CHARS,
    )
    return st.lists(one, min_size=1, max_size=3)


def owners(spans: list[tuple[int, int]], at: int, insert: bool) -> set[int]:
    """The elements an edit at `at` damages: its own characters, the separator before
    it (between elements), and for an insert, either edge. None: the wrapper's text."""
    hit: set[int] = set()
    for k, (start, end) in enumerate(spans):
        low = spans[k - 1][1] if k else start
        if low <= at < end or (insert and at == end):
            hit.add(k)
    return hit


STRUCTURE = frozenset('"\\\n{}[]')
"""Quote, backslash, newline: an edit of one may open or close a string (the parser
ends a string at a raw newline, to re-synchronise on pretty-printed output). Brackets:
one more or less between two elements nests or ends the plans array early."""


@dataclass(frozen=True)
class Damage:
    text: str
    intact: set[int]
    """Indices of the elements no edit touched."""
    wrapper_hit: bool
    """An edit hit the text around the elements ({"plans": [ ... ]}, prose, fences)."""
    structure_kept: bool
    """No edit added, removed or replaced a STRUCTURE character: every string and
    bracket still opens and closes where it did (keys, values, colons and commas may
    break: the parser re-synchronises at the next element)."""
    first_at: int


def corrupt(batch: Batch, changes: list[Edit]) -> Damage:
    text = batch.text
    touched: set[int] = set()
    wrapper = False
    kept = True
    # Apply from the end so earlier offsets stay valid.
    for edit in sorted(changes, key=lambda e: e.at, reverse=True):
        at = min(edit.at, len(text))
        hit = owners(batch.spans, at, edit.kind == "insert")
        touched |= hit
        wrapper = wrapper or not hit
        old = text[at : at + 1] if edit.kind != "insert" else ""
        new = edit.char if edit.kind != "delete" else ""
        kept = kept and not (set(old + new) & STRUCTURE)
        if edit.kind == "insert":
            text = text[:at] + edit.char + text[at:]
        elif edit.kind == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + edit.char + text[at + 1 :]
    intact = set(range(len(batch.elements))) - touched
    return Damage(text, intact, wrapper, kept, min(e.at for e in changes))


def parse(text: str, cuts: list[int], expected: list[int] | None = None) -> list[ParseResult]:
    parser = PlanStreamParser(expected_ids=expected)
    points = sorted({c % (len(text) + 1) for c in cuts})
    out: list[ParseResult] = []
    for a, b in itertools.pairwise([0, *points, len(text)]):
        out += parser.feed(text[a:b])
    summary = parser.finish()
    out += summary.rejected
    if summary.partial is not None:
        out.append(summary.partial)
    return out


def check_shape(results: list[ParseResult]) -> dict[int, ParsedPlan]:
    plans: dict[int, ParsedPlan] = {}
    for result in results:
        assert isinstance(result, ParsedPlan | RejectedElement)
        if isinstance(result, ParsedPlan):
            assert result.plan.agent_id not in plans, "one plan per agent"
            plans[result.plan.agent_id] = result
        else:
            assert result.cause in ("parse_error", "validation_error")
    return plans


CUTS = st.lists(st.integers(0, 100_000), max_size=25)


@FUZZ
@given(ARBITRARY, CUTS)
def test_arbitrary_text_never_raises_and_chunking_changes_nothing(
    text: str, cuts: list[int]
) -> None:
    chunked = parse(text, cuts)
    whole = parse(text, [])
    check_shape(chunked)
    assert chunked == whole


@FUZZ
@given(ARBITRARY, CUTS)
def test_arbitrary_text_with_expected_ids_only_yields_those(text: str, cuts: list[int]) -> None:
    plans = check_shape(parse(text, cuts, expected=[1, 2, 3]))
    assert set(plans) <= {1, 2, 3}


@FUZZ
@given(st.sampled_from(["verbose", "compact"]).flatmap(batches), CUTS, st.data())
def test_corrupted_batches_keep_every_intact_plan_unaltered(
    batch: Batch, cuts: list[int], data: st.DataObject
) -> None:
    changes = data.draw(edits(len(batch.text)))
    damage = corrupt(batch, changes)
    damaged = damage.text
    # A digit edit elsewhere must not have forged an intact agent's id.
    intact = {
        k
        for k in damage.intact
        if len(re.findall(rf"\b{batch.elements[k]['agent_id']}\b", damaged)) == 1
    }
    expected = [e["agent_id"] for e in batch.elements]
    results = parse(damaged, cuts, expected)
    assert results == parse(damaged, [], expected)
    plans = check_shape(results)

    local = not damage.wrapper_hit and damage.structure_kept
    for k in intact:
        element = batch.elements[k]
        got = plans.get(element["agent_id"])
        if got is not None:  # not altered
            assert got.plan == AgentPlan.model_validate(element)
            assert not got.partial
        if local or batch.spans[k][1] < damage.first_at:  # not lost
            assert got is not None, f"intact element {k} lost: {damaged!r}"


@FUZZ
@given(st.sampled_from(["verbose", "compact"]).flatmap(batches), st.data())
def test_batches_cut_anywhere_keep_what_closed(batch: Batch, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(batch.text)))
    cuts = data.draw(CUTS)
    plans = check_shape(parse(batch.text[:cut], cuts))
    for element, (_, end) in zip(batch.elements, batch.spans, strict=True):
        got = plans.get(element["agent_id"])
        if end <= cut:
            assert got is not None and got.plan == AgentPlan.model_validate(element)
        elif got is not None:  # the truncated last one: a prefix of its steps
            assert got.partial
            want = AgentPlan.model_validate(element).steps
            assert got.plan.steps == want[: len(got.plan.steps)]


@FUZZ
@given(batches("compact"), CUTS)
def test_compact_batches_parse_exactly_whatever_the_chunks(batch: Batch, cuts: list[int]) -> None:
    plans = check_shape(parse(batch.text, cuts, [e["agent_id"] for e in batch.elements]))
    assert {i: p.plan for i, p in plans.items()} == {
        e["agent_id"]: AgentPlan.model_validate(e) for e in batch.elements
    }
    assert all(not p.partial for p in plans.values())
