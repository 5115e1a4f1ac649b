"""The agent inspector: what one LLM agent saw, was asked, said, and ended up doing.

Shows the agent's snapshot (compact, as it is now), its block of the prompt and the
size of the shared prefix, the raw streamed text of its plan, the validated plan,
the steps validation dropped (with reasons) and its tier history with causes.
The panel is rendered into a cached surface that is rebuilt only when its content
changes, so a long raw text costs nothing per frame.
"""

from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass

import pygame

from game.match.planlog import AgentPlanState, PlanningLog
from game.rules.snapshot import Snapshot, UnitView
from game.rules.world import World
from game.ui import theme

MONO_SIZE = 16
SECTION_LINES = {"snapshot": 6, "prompt": 3, "raw": 4, "validated": 3, "dropped": 3, "tier": 6}
"""Most wrapped lines shown per section (by the first word of its title), so all fit."""


@dataclass(frozen=True)
class Line:
    text: str
    colour: theme.Colour = theme.TEXT
    kind: str = "mono"  # "mono" body text, "head" a section title, "title" the panel title
    gap_before: int = 0


def fmt_step(step: object) -> str:
    """MoveTo(4,7), Attack(#9), Reload: one plan step, compact."""
    act = getattr(step, "act", type(step).__name__)
    if hasattr(step, "x") and hasattr(step, "y"):
        return f"{act}({step.x},{step.y})"
    if hasattr(step, "target_id"):
        return f"{act}(#{step.target_id})"
    return str(act)


def _unit(u: UnitView) -> str:
    return f"#{u.id} {u.role} ({u.x},{u.y}) hp {u.hp}/{u.max_hp} ammo {u.ammo}/{u.max_ammo}"


def snapshot_lines(snap: Snapshot) -> list[str]:
    me = snap.me
    out = [f"me {_unit(me)} gren {me.grenades} {me.status}"]
    out.append(
        "allies: " + (", ".join(f"#{a.id} ({a.x},{a.y}) {a.hp}hp" for a in snap.allies) or "none")
    )
    out.append(
        "enemies seen: "
        + (", ".join(f"#{e.id} {e.role} ({e.x},{e.y}) {e.hp}hp" for e in snap.enemies) or "none")
    )
    cover = " ".join(f"({x},{y})" for x, y in snap.cover) or "none"
    goal = f"({snap.objective[0]},{snap.objective[1]})" if snap.objective else "none"
    out.append(f"cover: {cover}; smoke tiles: {len(snap.smoke)}; goal {goal}")
    return out


def shared_prefix_chars(log: PlanningLog, agent_id: int) -> int | None:
    """System-prompt size of the latest round that sent a request for this agent."""
    for view in reversed(log.rounds):
        if view.system_chars and any(agent_id in ids for ids in view.requests.values()):
            return view.system_chars
    return None


def inspector_lines(
    agent_id: int, state: AgentPlanState | None, snap: Snapshot | None, log: PlanningLog, squad: str
) -> list[Line]:
    """Everything the panel shows, as lines (wrapping happens at render time)."""
    role = snap.me.role if snap is not None else ""
    lines = [Line(f"Agent #{agent_id} ({squad} {role})".replace(" )", ")"), kind="title")]
    if state is None:
        lines.append(Line("no planning round for this agent yet", theme.TEXT_DIM))
    elif state.waiting:
        lines.append(Line("waiting for its plan...", theme.TEXT_WARN))
    timing = state.timing if state is not None else None
    if timing is not None and timing.tier is not None:
        parts = [f"tier {theme.TIER_LABEL[timing.tier]}"]
        if timing.from_cache:
            parts.append("from prompt cache")
        if timing.cause is not None:
            parts.append(f"cause {timing.cause}")
        parts.append(f"plan_wait {theme.fmt_ms(timing.plan_wait_ms)}")
        lines.append(Line(" · ".join(parts), theme.TIER_COLOURS[timing.tier]))
    if timing is not None and timing.schedule is not None:
        lines.append(Line(f"auto: {timing.schedule}", theme.TEXT_DIM))
    if state is not None and state.intent:
        lines.append(Line(f"intent: {state.intent}", kind="sans", colour=theme.TEXT))

    lines.append(Line("Snapshot (now)", kind="head", gap_before=6))
    if snap is None:
        lines.append(Line("unit is dead", theme.TEXT_DIM))
    else:
        lines += [Line(s) for s in snapshot_lines(snap)]

    prefix = shared_prefix_chars(log, agent_id)
    head = "Prompt block" + (f" (shared prefix {prefix} chars)" if prefix else "")
    lines.append(Line(head, kind="head", gap_before=6))
    block = state.prompt_block if state is not None else ""
    lines.append(
        Line(
            block or "(no request: cache hit or rule tier)", theme.TEXT if block else theme.TEXT_DIM
        )
    )

    thinking = state.thinking if state is not None else ""
    if thinking:  # a reasoning model's thinking: its own block, never the plan's text
        timing = state.timing if state is not None else None
        took = ""
        thought = None if timing is None else timing.thinking_ms
        text_at = None if timing is None else timing.first_content_ms
        if thought is not None and text_at is not None:
            took = f", {text_at - thought:.0f} ms to first text"
        lines.append(Line(f"Thinking ({len(thinking)} chars{took})", kind="head", gap_before=6))
        lines.append(Line(thinking, theme.TEXT_DIM))

    raw = state.raw if state is not None else ""
    lines.append(Line(f"Raw streamed text ({len(raw)} chars)", kind="head", gap_before=6))
    lines.append(Line(raw or "(none)", theme.TEXT if raw else theme.TEXT_DIM))

    lines.append(Line("Validated plan", kind="head", gap_before=6))
    steps = state.steps if state is not None else ()
    lines.append(Line("  ".join(f"{i + 1}.{fmt_step(s)}" for i, s in enumerate(steps)) or "(none)"))

    dropped = state.dropped if state is not None else ()
    lines.append(Line(f"Dropped steps ({len(dropped)})", kind="head", gap_before=6))
    for d in dropped:
        lines.append(Line(f"step {d.index + 1} {fmt_step(d.step)}: {d.reason}", theme.TEXT_BAD))
    if not dropped:
        lines.append(Line("none", theme.TEXT_DIM))
    for r in state.repaired if state is not None else ():
        lines.append(
            Line(f"step {r.index + 1} {fmt_step(r.step)} repaired: {r.reason}", theme.TEXT_WARN)
        )

    lines.append(Line("Tier history (newest first)", kind="head", gap_before=6))
    history = list(state.history) if state is not None else []
    for change in reversed(history):
        bits = [f"round {log.round_number(change.round_id):<4} {theme.TIER_SHORT[change.tier]}"]
        if change.from_cache:
            bits.append("cache")
        if change.partial:
            bits.append("partial")
        if change.cause is not None:
            bits.append(f"<- {change.cause}")
        lines.append(Line("  ".join(bits), theme.TIER_COLOURS[change.tier]))
    if not history:
        lines.append(Line("none", theme.TEXT_DIM))
    return lines


class Inspector:
    def __init__(self, fonts: theme.Fonts) -> None:
        self.fonts = fonts
        self._snap_key: tuple[int, int, int] | None = None
        self._snap: Snapshot | None = None
        self._panel: tuple[tuple[object, ...], pygame.Surface] | None = None
        self.drawn: list[pygame.Rect] = []
        """The cached panel's text rectangles, relative to the panel."""

    def snapshot(self, world: World, agent_id: int) -> Snapshot | None:
        key = (id(world), world.tick, agent_id)
        if key != self._snap_key:
            u = world.units.get(agent_id)
            self._snap = world.snapshot_of(agent_id) if u is not None and u.alive else None
            self._snap_key = key
        return self._snap

    def draw(
        self,
        surf: pygame.Surface,
        rect: pygame.Rect,
        world: World,
        log: PlanningLog,
        agent_id: int | None,
    ) -> None:
        if agent_id is None:
            pygame.draw.rect(surf, theme.PANEL, rect)
            pygame.draw.rect(surf, theme.PANEL_EDGE, rect, 1)
            msg = self.fonts.text("no LLM agent to inspect", theme.TEXT_DIM)
            surf.blit(msg, (rect.x + theme.PAD, rect.y + theme.PAD))
            return
        state = log.agents.get(agent_id)
        snap = self.snapshot(world, agent_id)
        unit = world.units.get(agent_id)
        squad = unit.squad if unit is not None else (state.squad if state else "")
        key = (
            rect.size,
            agent_id,
            log.latest_round,
            self._snap_key,
            None if state is None else _state_key(state),
            shared_prefix_chars(log, agent_id),
        )
        if self._panel is None or self._panel[0] != key:
            lines = inspector_lines(agent_id, state, snap, log, squad)
            self._panel = (key, self.render(lines, rect.size))
        surf.blit(self._panel[1], rect.topleft)
        for r in self.drawn:
            self.fonts.drawn.add("inspector", r.move(rect.topleft), rect)

    def render(self, lines: list[Line], panel_size: tuple[int, int]) -> pygame.Surface:
        w, h = panel_size
        self.drawn = []
        panel = pygame.Surface((w, h))
        panel.fill(theme.PANEL)
        pygame.draw.rect(panel, theme.PANEL_EDGE, panel.get_rect(), 1)
        f = self.fonts
        x, y = theme.PAD, theme.PAD
        inner = w - 2 * theme.PAD
        char_w = max(1, f.width("M" * 10, MONO_SIZE, "mono") // 10)
        cols = max(10, inner // char_w)
        section = ""
        shown_in_section = 0
        for line in lines:
            y += line.gap_before
            if line.kind in ("title", "head", "sans"):
                fsize = theme.TITLE_SIZE if line.kind == "title" else theme.TEXT_SIZE
                colour = line.colour if line.kind == "sans" else theme.TEXT
                img = f.text(line.text, colour, size=fsize, bold=line.kind != "sans")
                if line.kind == "head":
                    section = line.text.split(" ")[0].lower()
                    shown_in_section = 0
                    pygame.draw.line(panel, theme.PANEL_EDGE, (x, y), (w - theme.PAD, y))
                    y += 3
                if y + img.get_height() > h - theme.PAD:
                    break
                if img.get_width() > inner:  # shortened at a word, never cut mid-word
                    text = f.fit(line.text, inner, fsize, bold=line.kind != "sans")
                    img = f.text(text, colour, size=fsize, bold=line.kind != "sans")
                panel.blit(img, (x, y))
                self.drawn.append(img.get_rect(topleft=(x, y)))
                y += img.get_height() + 2
                continue
            limit = SECTION_LINES.get(section, 99)
            lh = f.line_height(MONO_SIZE, "mono")
            for part in _wrap(line.text, cols):
                if shown_in_section >= limit:
                    if shown_in_section == limit:
                        more = f.text("...", theme.TEXT_DIM, size=MONO_SIZE, kind="mono")
                        panel.blit(more, (x, y))
                        y += lh
                        shown_in_section += 1
                    break
                if y + lh > h - theme.PAD:
                    return panel
                img = f.text(part, line.colour, size=MONO_SIZE, kind="mono")
                panel.blit(img, (x, y))
                self.drawn.append(img.get_rect(topleft=(x, y)))
                y += max(lh, img.get_height())
                shown_in_section += 1
        return panel


def _wrap(text: str, cols: int) -> list[str]:
    out: list[str] = []
    for para in text.splitlines() or [""]:
        out += textwrap.wrap(para, cols, break_long_words=True, replace_whitespace=False) or [""]
    return out


def _state_key(state: AgentPlanState) -> tuple[object, ...]:
    timing = state.timing
    return (
        state.waiting,
        None if timing is None else dataclasses.astuple(timing),
        state.prompt_block,
        state.intent,
        state.thinking,
        state.raw,
        state.steps,
        state.dropped,
        state.repaired,
        tuple(state.history),
    )


def llm_agent_ids(world: World, log: PlanningLog, llm_squads: tuple[str, ...]) -> list[int]:
    """Agents Tab cycles through: living units of the LLM squads (by id)."""
    return [u.id for u in world.living() if u.squad in llm_squads]
