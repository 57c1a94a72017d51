"""The branch hierarchy: units (company → branch / 管理处 / 网点) and the departments in them.

A department without a unit belongs to the company itself. The head of a unit reads
the departments of the unit and of all its sub-units; the company unit's own
departments are the head office, to which a unit escalates the cases beyond it.
Figures roll up the tree: a unit counts its own departments and its sub-units.

Plain functions over small lookup tables; the session is only used to read them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.i18n import _l
from app.lifecycle import Errors
from app.models import Department, Unit, UnitKind

COMPANY = UnitKind.company.value


@dataclass(frozen=True)
class Tree:
    """The units (id → parent, kind, name, sort) and each department's unit."""

    parent: Mapping[int, Optional[int]]
    kind: Mapping[int, str]
    name: Mapping[int, str]
    sort: Mapping[int, tuple[int, int]]
    head: Mapping[int, Optional[int]]
    active: Mapping[int, bool]
    department_unit: Mapping[int, Optional[int]]

    @property
    def company_id(self) -> Optional[int]:
        """The company unit: the first root unit of kind company (departments without a unit belong to it)."""
        roots = [u for u, k in self.kind.items() if k == COMPANY and self.parent.get(u) is None]
        return min(roots, key=lambda u: self.sort[u]) if roots else None

    def unit_of(self, department_id: int) -> Optional[int]:
        """The unit a department belongs to (the company unit when it has none)."""
        return self.department_unit.get(department_id) or self.company_id

    def children(self) -> dict[Optional[int], list[int]]:
        result: dict[Optional[int], list[int]] = defaultdict(list)
        for u in sorted(self.parent, key=lambda u: self.sort[u]):
            result[self.parent[u]].append(u)
        return result

    def subtree(self, roots: Iterable[int]) -> set[int]:
        """The units given and all units below them."""
        below = self.children()
        found: set[int] = set()
        todo = [u for u in roots if u in self.parent]
        while todo:
            u = todo.pop()
            if u in found:
                continue
            found.add(u)
            todo.extend(below.get(u, []))
        return found

    def ancestors(self, unit_id: int) -> list[int]:
        """The unit itself and the units above it, nearest first (a cycle stops the walk)."""
        chain: list[int] = []
        u: Optional[int] = unit_id
        while u is not None and u not in chain and u in self.parent:
            chain.append(u)
            u = self.parent[u]
        return chain

    def departments_in(self, unit_ids: Iterable[int]) -> set[int]:
        """Departments belonging to any of the units (those without a unit to the company's)."""
        wanted = set(unit_ids)
        return {d for d in self.department_unit if self.unit_of(d) in wanted}

    def is_head_office(self, department_id: int) -> bool:
        """A department of the company itself (no unit, or the company unit's own)."""
        unit = self.department_unit.get(department_id)
        return unit is None or self.kind.get(unit) == COMPANY

    def order(self, unit_ids: Iterable[int]) -> list[int]:
        """The units in tree order (parents before children, siblings by sort)."""
        wanted = set(unit_ids)
        below = self.children()
        result: list[int] = []

        def walk(u: int) -> None:
            if u in result:
                return
            if u in wanted:
                result.append(u)
            for c in below.get(u, []):
                walk(c)

        for root in below.get(None, []):
            walk(root)
        result += sorted(wanted - set(result), key=lambda u: self.sort[u])  # units on a cycle
        return result


def load_tree(session: Session) -> Tree:
    units = session.execute(
        select(Unit.id, Unit.parent_id, Unit.kind, Unit.name, Unit.sort, Unit.head_id, Unit.active)
    ).all()
    departments = session.execute(select(Department.id, Department.unit_id)).all()
    return Tree(
        parent={u.id: u.parent_id for u in units},
        kind={u.id: getattr(u.kind, "value", u.kind) for u in units},
        name={u.id: u.name for u in units},
        sort={u.id: (u.sort or 0, u.id) for u in units},
        head={u.id: u.head_id for u in units},
        active={u.id: bool(u.active) for u in units},
        department_unit={d.id: d.unit_id for d in departments},
    )


@dataclass(frozen=True)
class UnitScope:
    unit_ids: frozenset[int]  # units headed and their sub-units
    department_ids: frozenset[int]  # departments of those units
    head_office: bool  # heads a head-office department


def scope_of_head(session: Session, staff_id: int, headed_departments: Iterable[int]) -> UnitScope:
    """What a department head reads through the hierarchy: the units it heads (active ones)
    with their sub-units and departments, and whether its own departments are the head office."""
    headed = set(headed_departments)
    if session.scalar(select(Unit.id).limit(1)) is None:
        return UnitScope(frozenset(), frozenset(), True)  # no hierarchy: everything is the company
    tree = load_tree(session)
    roots = [u for u, h in tree.head.items() if h == staff_id and tree.active[u]]
    unit_ids = tree.subtree(roots)
    return UnitScope(
        frozenset(unit_ids),
        frozenset(tree.departments_in(unit_ids)),
        any(tree.is_head_office(d) for d in headed),
    )


def rollup(tree: Tree, per_department: Mapping[int, Any], unit_ids: Optional[Iterable[int]] = None) -> list[dict]:
    """Complaint figures per unit, each counting its own departments and all its sub-units.

    ``per_department`` maps department ids to totals (``received``, ``valid``, ``closed``);
    ``unit_ids`` limits the units listed (None: all).
    """
    measures = ("received", "valid", "closed")
    own: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(measures, 0))
    rolled: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(measures, 0))
    for department_id, totals in per_department.items():
        unit = tree.unit_of(department_id)
        if unit is None:
            continue
        for m in measures:
            own[unit][m] += getattr(totals, m, 0) or 0
        for u in tree.ancestors(unit):
            for m in measures:
                rolled[u][m] += getattr(totals, m, 0) or 0
    listed = tree.order(tree.parent if unit_ids is None else unit_ids)
    return [
        {
            "id": u,
            "label": tree.name[u],
            "kind": tree.kind[u],
            "parent_id": tree.parent[u],
            "value": rolled[u]["received"],
            "valid": rolled[u]["valid"],
            "closed": rolled[u]["closed"],
            "own": own[u]["received"],
        }
        for u in listed
        if u in tree.parent
    ]


# --- Checks of the admin screens and the REST resource -----------------------------------


def check_unit(session: Session, unit: Unit) -> None:
    """Refuse a unit row that would break the tree; raises ValidationFailed with every problem."""
    errors = Errors()
    if not (unit.name or "").strip():
        errors.add("name", str(_l("Please enter the name.")))
    if not (unit.code or "").strip():
        errors.add("code", str(_l("Please enter the code.")))
    kind = getattr(unit.kind, "value", unit.kind)
    if kind not in {k.value for k in UnitKind}:
        errors.add("kind", str(_l("Please choose the kind of unit.")))
    parent = unit.parent
    with session.no_autoflush:
        if kind == COMPANY:
            if parent is not None:
                errors.add("parent", str(_l("The company is the top of the tree: it has no parent unit.")))
            other = session.scalar(
                select(Unit.id).where(Unit.kind == UnitKind.company, Unit.id != (unit.id or 0)).limit(1)
            )
            if other is not None:
                errors.add("kind", str(_l("There is a company unit already.")))
        elif kind is not None and parent is None:
            errors.add("parent", str(_l("Please choose the unit above it (the company, a branch …).")))
        seen: set[int] = set()
        while parent is not None:
            if parent is unit or (unit.id is not None and parent.id == unit.id):
                errors.add("parent", str(_l("A unit cannot be placed below itself.")))
                break
            if parent.id in seen:
                break
            seen.add(parent.id)
            parent = parent.parent
    errors.raise_if_any()
    unit.kind = UnitKind(kind)


def unit_in_use(session: Session, unit: Unit) -> Optional[str]:
    """Why a unit may not be deleted (departments or sub-units in it), or None."""
    has_departments = session.scalar(select(Department.id).where(Department.unit_id == unit.id).limit(1))
    has_units = session.scalar(select(Unit.id).where(Unit.parent_id == unit.id).limit(1))
    if has_departments is not None or has_units is not None:
        return str(
            _l("Unit %(name)s still holds departments or units: move them first, or deactivate it.", name=unit.name)
        )
    return None
