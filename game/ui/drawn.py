"""What the renderer drew where: the rectangles of its text, badges and labels.

Each drawing function that places text reports the rectangle it drew and the panel it
belongs in (`add`), so layout tests can check from the drawing itself that no two
labels of a group overlap and that no text runs outside its panel. Cheap enough to run
every frame: one small tuple per label, cleared at the start of a frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pygame


@dataclass(frozen=True)
class Drawn:
    group: str
    """Labels of one group must not overlap each other ("board", "status", ...)."""
    rect: pygame.Rect
    bounds: pygame.Rect
    """The panel the label belongs in: it must lie inside it."""
    text: str


@dataclass
class DrawnRects:
    items: list[Drawn] = field(default_factory=list)

    def clear(self) -> None:
        self.items.clear()

    def add(self, group: str, rect: pygame.Rect, bounds: pygame.Rect, text: str = "") -> None:
        self.items.append(Drawn(group, pygame.Rect(rect), pygame.Rect(bounds), text))

    def group(self, name: str) -> list[Drawn]:
        return [d for d in self.items if d.group == name]

    def overlaps(self) -> list[tuple[Drawn, Drawn]]:
        """Pairs of labels of one group whose rectangles overlap."""
        out = []
        by_group: dict[str, list[Drawn]] = {}
        for d in self.items:
            by_group.setdefault(d.group, []).append(d)
        for items in by_group.values():
            for i, a in enumerate(items):
                out += [(a, b) for b in items[i + 1 :] if a.rect.colliderect(b.rect)]
        return out

    def outside(self) -> list[Drawn]:
        """Labels not wholly inside their panel."""
        return [d for d in self.items if not d.bounds.contains(d.rect)]
