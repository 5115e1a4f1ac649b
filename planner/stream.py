"""The streaming plan parser: streamed LLM text -> per-agent plans as each one closes.

Pure (no I/O, no clock): `PlanStreamParser.feed(text)` takes the model's text in chunks
of any size, including single characters, and `finish()` sums up what the answer held.
Its total work is linear in the text it is fed: no buffer is ever re-scanned or re-joined
on later chunks. (The wire framing the text arrives in, SSE or NDJSON, is decoded by the
backends: `planner.backends.framing`.)

Both plan formats (planner/schema.py) are read from any answer, element by element: an
element of the plans array that is an object is a verbose plan
(`{"agent_id":3,"steps":[{"act":"Scan"}]}`), one that is an array a compact plan
(`[3,[["Scan"]]]`). A plan's optional intent (verbose: an "intent" key; compact: a
third value) is kept when it is a string, trimmed to INTENT_MAX_CHARS; anything else
there is dropped, never a reason to reject the plan.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from game.rules.steps import MAX_STEPS, STEP_TYPES
from planner.errors import Cause
from planner.schema import INTENT_MAX_CHARS, AgentPlan, step_fields

_OPENER = re.compile(r"[{\[]")
# Inside a string only these matter. A raw newline is illegal in a JSON string; taking
# it as the string's end re-synchronises the scanner after an unterminated string in
# pretty-printed output (the element holding it is rejected by json.loads anyway).
_STRING_STOP = re.compile(r'["\\\n]')
_WHITESPACE = frozenset(" \t\r\n")
_CLOSER_OF = {"}": "{", "]": "["}
_KEY_CAP = 16
"""Longest key captured while scanning (only agent_id, steps and plans matter)."""
MAX_NESTING = 32
"""Deepest nesting inside an element (a plan needs 2 levels). A deeper element is
rejected without being decoded, so json.loads never recurses far on model output."""
_NUMBER_START = frozenset("-0123456789")
# Inside an element rejected for its depth: a run of plain text, of openers or of
# closers is skipped in one step; a quote starts a string (scanned as usual).
_SKIP_RUN = re.compile(r'[^"\[\]{}]+|[\[{]+|[\]}]+|"')
_LAX_INT: TypeAdapter[int] = TypeAdapter(int)


@dataclass(frozen=True)
class ParsedPlan:
    """A plan that passed the schema, for an agent of this round, first of its id."""

    plan: AgentPlan
    raw: str
    """The element's text as received (for partial plans: the truncated text)."""
    partial: bool = False
    """Recovered from a truncated last element: only its completed steps are kept."""
    dropped_steps: int = 0
    """Steps past `max_steps` that were cut off (the first `max_steps` are kept)."""


@dataclass(frozen=True)
class RejectedElement:
    """An element of the plans array that could not become a plan."""

    agent_id: int | None
    """The element's agent id when it could be read, even from malformed JSON."""
    cause: Cause
    """parse_error (not JSON, truncated, or nested deeper than MAX_NESTING) or
    validation_error (wrong shape, id not in this round, or a duplicate of an id that
    already has a plan)."""
    error: str
    raw: str


ParseResult = ParsedPlan | RejectedElement


@dataclass(frozen=True)
class ParseSummary:
    """What `PlanStreamParser.finish()` learned once the text ended."""

    missing: tuple[int, ...]
    """Expected ids with no plan (a partial plan counts as a plan), ascending."""
    partial: ParsedPlan | None
    """The truncated last element's completed steps, when it had an id and a step."""
    rejected: tuple[RejectedElement, ...]
    """Rejections found only at the end (a truncated element that could not be
    recovered); those already returned by `feed()` are not repeated here."""
    trailing_error: str | None
    """Why the text did not end as one complete plans document (truncated, no
    plans found), or None."""


class _Element:
    """Book-keeping for one open element (object or array) of the plans array.

    Offsets are relative to the element's first character, so slices of its text can
    be taken once, when it closes (or when the text ends).
    """

    __slots__ = (
        "agent_id_span",
        "agent_id_start",
        "compact",
        "is_root",
        "pieces",
        "saw_agent_id",
        "start",
        "step_comma",
        "step_commas",
        "step_numbered",
        "step_spans",
        "step_start",
        "steps_done",
        "steps_open",
        "too_deep",
    )

    def __init__(self, start: int, is_root: bool, compact: bool = False) -> None:
        self.start = start
        self.is_root = is_root
        """A top-level object: a single bare plan, or the {"plans": [...]} wrapper."""
        self.compact = compact
        """An array element: a compact plan [agent_id, [[act, ...], ...]]."""
        self.pieces: list[str] = []
        # A compact element's id is its first value, from the character after its '['.
        self.saw_agent_id = compact
        self.agent_id_start = 1 if compact else -1
        self.agent_id_span: tuple[int, int] | None = None
        self.steps_open = False
        self.steps_done = False
        """Compact: the steps array has closed (a later '[' at this level is not ours)."""
        self.step_start = -1
        self.step_spans: list[tuple[int, int]] = []
        self.step_numbered = False
        """Compact: the open step's first value is a number (it is really an element)."""
        self.step_commas = 0
        self.step_comma = -1
        """Compact: offset of the open step's first comma."""
        self.too_deep = False


class PlanStreamParser:
    """Turns streamed LLM text into per-agent plans the moment each object closes.

    Accepts {"plans": [...]}, a bare [...] or a single bare plan object, with prose
    or Markdown fences around it. A single pass tracks nesting, strings and escapes
    character by character, carrying its state across chunks; each element's text is
    decoded with json.loads exactly once, when its closing brace arrives, so the total
    work is linear in the text (`work` counts it).

    Policies: a plan with more than `max_steps` steps keeps its first `max_steps`
    (the most immediate orders; `ParsedPlan.dropped_steps` says how many were cut).
    For a duplicated id the first valid plan wins. A compact step must have exactly its
    action's values (an extra value is a validation_error: positions cannot be guessed).
    One bad element does not spoil the others: an element that breaks off where the
    next one begins is rejected as parse_error and scanning resumes at the new element.
    Verbose: a `{` where a key belongs, or a step object opening with "agent_id".
    Compact: a `[` inside a step (where the step opened as `[number,` the element starts
    at the step), or a `[` after the element's steps array closed. Both: a string cut by
    a raw newline. Only a bracket or quote out of place can trigger these, never a
    damaged number, name or comma. An element nested deeper than MAX_NESTING is
    rejected (parse_error) by the feed() that carried it past the bound, and the rest of
    it is skipped run by run (a run of brackets is one step), never decoded.

    JSON means JSON: NaN, Infinity and -Infinity (which Python's json.loads accepts) are
    a parse_error, and so is a number too long for Python to convert. Nothing in the
    text makes feed() or finish() raise: results already found in a chunk are returned
    whatever follows them in it.
    """

    def __init__(self, expected_ids: Iterable[int] | None = None, max_steps: int = MAX_STEPS):
        if not 1 <= max_steps <= MAX_STEPS:
            raise ValueError(f"max_steps must be within 1..{MAX_STEPS}, got {max_steps}")
        self._expected = None if expected_ids is None else frozenset(expected_ids)
        self._max_steps = max_steps
        self._delivered: set[int] = set()
        self._finished = False
        self._pos = 0  # characters consumed before the current chunk
        self._stack: list[str] = []
        self._in_string = False
        self._escape = False
        self._key: list[str] | None = None  # pieces of the key being captured
        self._key_len = 0
        self._last_string: str | None = None
        self._key_opens_object = False  # the last string was first in its object
        self._prev = ""  # last significant character outside strings
        self._array_depth: int | None = None  # stack depth inside the plans array
        self._elem: _Element | None = None
        self._skip = 0
        """Inside an element rejected for its depth: its open levels (0: not skipping)."""
        self._found_plans = False
        self.work = 0
        """Characters scanned plus characters handed to json.loads (for tests)."""
        self.steps = 0
        """Scanning steps taken: one per character, or one per run of a rejected
        element's rest (for tests: what a chunk costs in Python-level work)."""

    # -- public -----------------------------------------------------------------

    def feed(self, text: str) -> list[ParseResult]:
        if self._finished:
            raise RuntimeError("feed() after finish()")
        out: list[ParseResult] = []
        i, n = 0, len(text)
        while i < n:
            self.steps += 1
            if self._in_string:
                i = self._scan_string(text, i)
                continue
            if self._skip:
                i = self._skip_run(text, i)
                continue
            if not self._stack:  # outside any JSON value: skip prose up to an opener
                match = _OPENER.search(text, i)
                if match is None:
                    self.work += n - i
                    break
                self.work += match.start() - i
                i = match.start()
            self.work += 1
            c = text[i]
            if c in _WHITESPACE:
                pass
            elif c == '"':
                self._open_string()
            elif c == "{" or c == "[":
                self._open(c, text, i, out)
            elif c == "}" or c == "]":
                self._close(c, text, i, out)
            else:
                if c == ":":
                    self._colon(text, i, out)
                elif c == ",":
                    self._comma(i)
                elif self._prev == "[":
                    self._first_value(c)
                self._prev = c
            i += 1
        elem = self._elem
        if elem is not None:
            elem.pieces.append(text[max(0, elem.start - self._pos) :])
        self._pos += n
        return out

    def finish(self) -> ParseSummary:
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        partial: ParsedPlan | None = None
        rejected: list[RejectedElement] = []
        trailing: str | None = None
        elem = self._elem
        if elem is not None and not (elem.is_root and not elem.saw_agent_id):
            result = self._recover(elem)
            if isinstance(result, ParsedPlan):
                partial = result
            else:
                rejected.append(result)
        if self._stack or self._skip:
            trailing = "the response ended inside the JSON (truncated)"
        elif not self._found_plans:
            trailing = "no JSON plans found in the response"
        missing: tuple[int, ...] = ()
        if self._expected is not None:
            missing = tuple(sorted(self._expected - self._delivered))
        return ParseSummary(missing, partial, tuple(rejected), trailing)

    # -- scanning ---------------------------------------------------------------

    def _scan_string(self, text: str, i: int) -> int:
        if self._escape:
            self._escape = False
            self._capture(text[i])
            self.work += 1
            return i + 1
        match = _STRING_STOP.search(text, i)
        if match is None:
            self._capture(text[i:])
            self.work += len(text) - i
            return len(text)
        j = match.start()
        self._capture(text[i:j])
        self.work += j + 1 - i
        if text[j] == "\\":
            self._capture("\\")
            self._escape = True
        else:  # the closing quote, or a raw newline that ends a broken string
            self._in_string = False
            # After a broken string the scanner acts as if a comma followed, so an
            # element starting on the next line is seen where a key belongs.
            self._prev = '"' if text[j] == '"' else ","
            key = self._key
            self._last_string = None if key is None else "".join(key)
            self._key = None
        return j + 1

    def _capture(self, piece: str) -> None:
        if self._key is not None and piece:
            self._key_len += len(piece)
            if self._key_len > _KEY_CAP:
                self._key = None  # too long to be a key we care about
            else:
                self._key.append(piece)

    def _open_string(self) -> None:
        self._in_string = True
        elem = self._elem
        depth = len(self._stack) - self._elem_depth()
        # Keys matter at the element's level, and in a step ("agent_id" there means
        # the element broke off and the next began inside its steps array). A compact
        # element has no keys.
        wanted = (
            elem is not None
            and not elem.compact
            and (depth == 0 or (depth == 2 and elem.step_start >= 0))
        )
        self._key = [] if wanted else None
        self._key_opens_object = self._prev == "{"
        self._key_len = 0
        self._last_string = None

    def _elem_depth(self) -> int:
        return (self._array_depth or 0) + 1

    def _open(self, c: str, text: str, i: int, out: list[ParseResult]) -> None:
        stack = self._stack
        elem = self._elem
        prev = self._prev
        if elem is not None:
            if c == "{" and stack[-1] == "{" and prev in ("{", ","):
                # A '{' where a key belongs: the open element broke off and a new one
                # begins here. Reject the broken one and resume at the plans array.
                self._break_off(elem, text, i, out)
                elem = None
            elif c == "[" and elem.compact:
                elem = self._compact_break(elem, c, text, i, out)
        stack.append(c)
        self._prev = c
        depth = len(stack)
        if depth == 1:
            if c == "[":
                self._array_depth = 1
            else:  # a bare plan, or the wrapper: told apart by the "plans" key
                self._array_depth = 0
                self._start_element(i, is_root=True)
            return
        if elem is None:
            if depth == self._elem_depth() and self._array_depth:
                self._start_element(i, is_root=False, compact=c == "[")
            return
        elem_depth = self._elem_depth()
        if depth - elem_depth > MAX_NESTING:
            if not (elem.is_root and not elem.saw_agent_id):
                self._reject_too_deep(elem, text, i, out)
                return
            # A top-level object that is not (yet) a plan: the {"plans": [...]} wrapper
            # or prose in braces. Rejected when it closes, if it turns out to be a plan.
            elem.too_deep = True
        if elem.compact:
            if c == "[" and depth == elem_depth + 1 and not elem.steps_done:
                elem.steps_open = True
            elif c == "[" and depth == elem_depth + 2 and elem.steps_open:
                elem.step_start = self._pos + i - elem.start
                elem.step_numbered = False
                elem.step_commas = 0
                elem.step_comma = -1
            return
        # A key right before (`"steps": [`) says what this array holds.
        if c == "[" and depth == elem_depth + 1 and prev == ":" and self._last_string:
            if self._last_string == "steps":
                elem.steps_open = True
            elif self._last_string == "plans" and elem.is_root:
                # It was the {"plans": [...]} wrapper: its elements are the plans.
                self._elem = None
                self._array_depth = 2
                self._found_plans = True
        elif c == "{" and elem.steps_open and depth == elem_depth + 2:
            elem.step_start = self._pos + i - elem.start

    def _reject_too_deep(self, elem: _Element, text: str, i: int, out: list[ParseResult]) -> None:
        """The '[' or '{' at `i` took `elem` past MAX_NESTING: reject it now and skip the
        rest of it (its text from here on is neither kept nor decoded)."""
        raw = self._element_text(elem, text, i + 1)
        out.append(self._too_deep(elem, raw))
        floor = self._elem_depth() - 1  # the stack once the element has closed
        self._skip = len(self._stack) - floor
        del self._stack[floor:]
        self._elem = None
        self._found_plans = True

    def _skip_run(self, text: str, i: int) -> int:
        """One run of a rejected element's rest; returns where scanning goes on."""
        match = _SKIP_RUN.match(text, i)
        assert match is not None  # every character starts one of the runs
        j = match.end()
        c = text[i]
        if c == '"':
            self.work += 1
            self._open_string()
            return j
        if c == "[" or c == "{":
            self._skip += j - i
        elif c == "]" or c == "}":
            if j - i < self._skip:
                self._skip -= j - i
            else:  # the element's own closer is in this run
                j = i + self._skip
                self._skip = 0
                if not self._stack:
                    self._array_depth = None  # it was a top-level value
        self._prev = text[j - 1]
        self.work += j - i
        return j

    def _break_off(self, elem: _Element, text: str, i: int, out: list[ParseResult]) -> None:
        """The open element broke off at `i`, where a new value begins: reject it and
        resume at the plans array (or at the top, for a root object)."""
        stack = self._stack
        if not (elem.is_root and not elem.saw_agent_id):
            raw = self._element_text(elem, text, i).rstrip().rstrip(",").rstrip()
            out.append(self._broken(elem, raw, "element not closed before the next began"))
        if elem.is_root:  # no plans array to return to: this starts a fresh value
            self._array_depth = None
            del stack[:]
        else:
            del stack[self._elem_depth() - 1 :]
        self._elem = None

    def _compact_break(
        self, elem: _Element, c: str, text: str, i: int, out: list[ParseResult]
    ) -> _Element | None:
        """A '[' in a compact element where none belongs: inside a step (at the step, if
        it opened as `[number,`: that was the next element), or after the steps array.
        Returns the element open once the '[' is pushed (None: it starts a new one)."""
        depth = len(self._stack) + 1  # the '[' about to be pushed
        elem_depth = self._elem_depth()
        if depth == elem_depth + 3 and elem.step_start >= 0:
            if elem.step_numbered and elem.step_commas == 1 and self._prev == ",":
                new = self._split_at_step(elem, text, i, out)
                new.agent_id_span = (1, elem.step_comma - elem.step_start)
                new.saw_agent_id = True
                return new
        elif not (depth == elem_depth + 1 and elem.steps_done):
            return elem
        self._break_off(elem, text, i, out)
        return None

    def _split_at_step(
        self, elem: _Element, text: str, end: int, out: list[ParseResult]
    ) -> _Element:
        """Reject `elem` up to its open step and restart at that step's bracket."""
        begin = elem.step_start
        before = "".join(elem.pieces)
        so_far = before + text[max(0, elem.start - self._pos) : end]
        if not (elem.is_root and not elem.saw_agent_id):
            raw = so_far[:begin].rstrip().rstrip(",").rstrip()
            out.append(self._broken(elem, raw, "element not closed before the next began"))
        new = _Element(elem.start + begin, elem.is_root, elem.compact)
        if begin < len(before):
            new.pieces.append(before[begin:])
        del self._stack[self._elem_depth() - 1 :]
        self._stack.append("[" if elem.compact else "{")
        self._elem = new
        return new

    def _close(self, c: str, text: str, i: int, out: list[ParseResult]) -> None:
        stack = self._stack
        opener = _CLOSER_OF[c]
        self._prev = c
        if stack[-1] == opener:
            stack.pop()
        else:
            # Mismatched closer: unwind to its opener if there is one, else ignore it.
            # The raw text keeps the mistake, so json.loads rejects the element.
            for j in range(len(stack) - 1, -1, -1):
                if stack[j] == opener:
                    del stack[j:]
                    break
            else:
                return
        depth = len(stack)
        elem = self._elem
        if elem is not None:
            elem_depth = self._elem_depth()
            if depth < elem_depth:
                self._end_agent_id(elem, i)
                raw = self._element_text(elem, text, i + 1)
                self._elem = None
                result = self._element_closed(elem, raw)
                if result is not None:
                    out.append(result)
            elif elem.steps_open:
                step_closer = "]" if elem.compact else "}"
                if depth == elem_depth + 1 and c == step_closer and elem.step_start >= 0:
                    elem.step_spans.append((elem.step_start, self._pos + i + 1 - elem.start))
                    elem.step_start = -1
                elif depth == elem_depth:
                    elem.steps_open = False
                    elem.steps_done = True
        if self._array_depth is not None and depth < self._array_depth:
            self._array_depth = None  # the plans array (or the root value) closed
        if not stack:
            self._array_depth = None

    def _colon(self, text: str, i: int, out: list[ParseResult]) -> None:
        elem = self._elem
        if elem is None or self._prev != '"' or self._last_string != "agent_id":
            return
        depth = len(self._stack) - self._elem_depth()
        if depth == 2 and elem.step_start >= 0 and self._key_opens_object:
            # A step that opens with an "agent_id" key: the element was never closed,
            # and what looked like its next step is really the next element. (Only
            # as the first key: a chatty extra "agent_id" later in a step is ignored.)
            elem = self._split_at_step(elem, text, i, out)
            depth = 0
        if depth == 0:
            elem.saw_agent_id = True
            elem.agent_id_start = self._pos + i + 1 - elem.start
            elem.agent_id_span = None

    def _comma(self, i: int) -> None:
        elem = self._elem
        if elem is not None:
            depth = len(self._stack) - self._elem_depth()
            if depth == 0:
                self._end_agent_id(elem, i)
            elif depth == 2 and elem.compact and elem.step_start >= 0:
                elem.step_commas += 1
                if elem.step_comma < 0:
                    elem.step_comma = self._pos + i - elem.start
        self._last_string = None

    def _first_value(self, c: str) -> None:
        """`c` is the first character of an array's first value (and not a string)."""
        elem = self._elem
        if (
            elem is not None
            and elem.compact
            and elem.step_start >= 0
            and c in _NUMBER_START
            and len(self._stack) == self._elem_depth() + 2
        ):
            elem.step_numbered = True

    def _end_agent_id(self, elem: _Element, i: int) -> None:
        if elem.agent_id_start >= 0 and elem.agent_id_span is None:
            elem.agent_id_span = (elem.agent_id_start, self._pos + i - elem.start)

    def _start_element(self, i: int, is_root: bool, compact: bool = False) -> None:
        self._elem = _Element(self._pos + i, is_root, compact)
        if not is_root:
            self._found_plans = True

    def _element_text(self, elem: _Element, text: str, end: int) -> str:
        begin = max(0, elem.start - self._pos)
        return "".join([*elem.pieces, text[begin:end]])

    # -- turning an element into a result ---------------------------------------

    def _element_closed(self, elem: _Element, raw: str) -> ParseResult | None:
        if elem.is_root and not elem.saw_agent_id:
            return None  # prose in braces, or a wrapper without a plans array
        self._found_plans = True
        if elem.too_deep:
            return self._too_deep(elem, raw)
        self.work += len(raw)
        try:
            value = _loads(raw)
        except ValueError as exc:
            return RejectedElement(self._read_id(elem, raw), "parse_error", f"bad JSON: {exc}", raw)
        return self._accept(value, raw, elem, partial=False)

    def _too_deep(self, elem: _Element, raw: str) -> RejectedElement:
        error = f"nested more than {MAX_NESTING} levels deep"
        return RejectedElement(self._read_id(elem, raw), "parse_error", error, raw)

    def _broken(self, elem: _Element, raw: str, why: str) -> RejectedElement:
        self._found_plans = True
        return RejectedElement(self._read_id(elem, raw), "parse_error", why, raw)

    def _recover(self, elem: _Element) -> ParseResult:
        """The truncated last element: keep its completed steps if it had an id."""
        self._found_plans = True
        raw = "".join(elem.pieces)
        if elem.too_deep:
            return self._too_deep(elem, raw)
        agent_id = self._read_id(elem, raw)
        if agent_id is None or not elem.step_spans:
            return RejectedElement(
                agent_id, "parse_error", "truncated before an id and one step completed", raw
            )
        steps: list[object] = []
        for begin, end in elem.step_spans:
            self.work += end - begin
            try:
                steps.append(_loads(raw[begin:end]))
            except ValueError as exc:
                return RejectedElement(agent_id, "parse_error", f"bad JSON step: {exc}", raw)
        value = [agent_id, steps] if elem.compact else {"agent_id": agent_id, "steps": steps}
        return self._accept(value, raw, elem, partial=True)

    def _read_id(self, elem: _Element, raw: str) -> int | None:
        if elem.agent_id_span is None:
            return None
        begin, end = elem.agent_id_span
        return _as_int_or_none(raw[begin:end].strip())

    def _accept(self, value: object, raw: str, elem: _Element, partial: bool) -> ParseResult:
        if elem.compact:
            if not isinstance(value, list):
                return RejectedElement(
                    None, "validation_error", f"element is a {type(value).__name__}", raw
                )
            if len(value) not in (2, 3) or not isinstance(value[1], list):
                agent_id = _as_int_or_none(value[0]) if value else None
                error = "a compact plan is [agent_id,[step,...]] or [agent_id,[step,...],intent]"
                return RejectedElement(agent_id, "validation_error", error, raw)
            agent_id_value, steps = value[:2]
            intent = clean_intent(value[2] if len(value) == 3 else None)
        elif isinstance(value, dict):
            agent_id_value, steps = value.get("agent_id"), value.get("steps")
            intent = clean_intent(value.get("intent"))
            value = {**value, "intent": intent}
        else:
            return RejectedElement(
                None, "validation_error", f"element is a {type(value).__name__}, not an object", raw
            )
        dropped = 0
        if isinstance(steps, list) and len(steps) > self._max_steps:
            dropped = len(steps) - self._max_steps
            steps = steps[: self._max_steps]
            if isinstance(value, dict):
                value = {**value, "steps": steps}
        if elem.compact:
            try:
                value = {
                    "agent_id": agent_id_value,
                    "steps": [_from_compact(s) for s in steps],
                    "intent": intent,
                }
            except _ValuesError as exc:
                agent_id = _as_int_or_none(agent_id_value)
                if agent_id is None:
                    agent_id = self._read_id(elem, raw)
                return RejectedElement(agent_id, "validation_error", str(exc), raw)
        try:
            plan = AgentPlan.model_validate(value)
        except ValidationError as exc:
            agent_id = _as_int_or_none(agent_id_value)
            if agent_id is None:
                agent_id = self._read_id(elem, raw)
            return RejectedElement(agent_id, "validation_error", _describe(exc), raw)
        agent_id = plan.agent_id
        if self._expected is not None and agent_id not in self._expected:
            expected = ", ".join(map(str, sorted(self._expected)))
            error = f"unknown agent_id {agent_id} (this round: {expected})"
            return RejectedElement(agent_id, "validation_error", error, raw)
        if agent_id in self._delivered:
            return RejectedElement(
                agent_id, "validation_error", f"duplicate agent_id {agent_id}", raw
            )
        self._delivered.add(agent_id)
        return ParsedPlan(plan, raw, partial, dropped)


def clean_intent(value: object) -> str | None:
    """A plan's intent as kept: a string with its whitespace collapsed, cut to
    INTENT_MAX_CHARS; None for anything else (a bad intent never costs the plan)."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.split())[:INTENT_MAX_CHARS].rstrip()
    return text or None


class _ValuesError(ValueError):
    """A compact step with more values than its action has fields."""


def _from_compact(step: object) -> object:
    """A compact step `[act, *values]` as the action's fields; anything else as it is
    (the plan model then says what is wrong with it)."""
    if not isinstance(step, list) or not step:
        return step
    act = step[0]
    if not isinstance(act, str) or act not in STEP_TYPES:
        return {"act": act}
    names = step_fields(act)
    if len(step) - 1 > len(names):
        wanted = f"{len(names)} value{'s' * (len(names) != 1)}"
        if names:
            wanted += f" ({', '.join(names)})"
        raise _ValuesError(f"{step!r}: {act} takes {wanted}, got {len(step) - 1}")
    return {"act": act, **dict(zip(names, step[1:], strict=False))}


def _loads(text: str) -> object:
    """json.loads, as strict as JSON: raises ValueError (json.JSONDecodeError for bad
    syntax) for NaN, Infinity and -Infinity, for a number too long to convert, and for
    nesting too deep to decode (the scanner bounds it first; this never lets a
    RecursionError out)."""
    try:
        return json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise ValueError("nested too deep to decode") from None


def _not_json(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _as_int_or_none(value: object) -> int | None:
    if isinstance(value, str):
        try:
            value = _loads(value)
        except ValueError:
            return None
    if isinstance(value, bool):
        return None
    try:
        return _LAX_INT.validate_python(value)
    except ValidationError:
        return None


def _describe(exc: ValidationError, limit: int = 3) -> str:
    errors = exc.errors(include_url=False)
    parts = [
        f"{'.'.join(map(str, err['loc'])) or 'element'}: {err['msg']}" for err in errors[:limit]
    ]
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts)
