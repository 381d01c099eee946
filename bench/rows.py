"""What a benchmark section reports: rows of figures, each with its reference and target."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Quantity = Literal["ratio", "value", "difference"]


@dataclass(frozen=True)
class Target:
    """A goal of the performance issue: `quantity` of a row must stay under or over `limit`.

    `quantity` is the row's `ratio` (docmill / reference), its docmill `value`, or the
    `difference` docmill - reference.
    """

    goal: int  # number of the target in the issue (1-7)
    quantity: Quantity
    at_most: bool
    limit: float
    label: str

    def met(self, row: Row) -> bool | None:
        value = {"ratio": row.ratio, "value": row.docmill, "difference": row.difference}[
            self.quantity
        ]
        if value is None:
            return None
        return value <= self.limit if self.at_most else value >= self.limit

    def margin(self, row: Row) -> str:
        """How far the row is from the limit, in words, e.g. '22 % under the limit'."""
        value = {"ratio": row.ratio, "value": row.docmill, "difference": row.difference}[
            self.quantity
        ]
        if value is None or self.limit == 0:
            return ""
        share = abs(value - self.limit) / abs(self.limit) * 100
        side = "under" if value <= self.limit else "over"
        return f"{share:.0f} % {side} the limit"


def at_most(goal: int, quantity: Quantity, limit: float, label: str) -> Target:
    return Target(goal, quantity, True, limit, label)


def at_least(goal: int, quantity: Quantity, limit: float, label: str) -> Target:
    return Target(goal, quantity, False, limit, label)


@dataclass
class Row:
    """One line of the table: a docmill figure beside the reference tool's on the same work."""

    section: str  # "text", "png", "optimize", "office", "images", "http", "scaling", "memory"
    level: str  # "op" (called directly), "http", "quality", "memory"
    name: str  # what was measured, on what
    unit: str  # "pages/s", "ms/page", "MB"...
    docmill: float | None
    reference: float | None = None
    tool: str = ""  # the reference: a program, or docmill's own op for HTTP overhead
    target: Target | None = None
    runs: str = ""  # timed runs per figure: "5", or "5/3" (docmill/reference)
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)  # for the JSON only

    @property
    def ratio(self) -> float | None:
        if self.docmill is None or not self.reference:
            return None
        return self.docmill / self.reference

    @property
    def difference(self) -> float | None:
        if self.docmill is None or self.reference is None:
            return None
        return self.docmill - self.reference

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = None if self.target is None else asdict(self.target)
        data.update(ratio=self.ratio, met=self.met)
        return data


def runs_label(ours: int, theirs: int | None = None) -> str:
    """'5' when both sides ran as often, '5/3' otherwise (docmill/reference)."""
    if theirs is None or theirs == ours:
        return str(ours)
    return f"{ours}/{theirs}"
