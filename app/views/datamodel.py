"""The lists' data interface: rows counted up to a cap, the page's keys found over the model's own
table, and a scope's OR-ed branches counted apart (issue 16: pages at a million cases)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any, Optional

from flask import has_request_context, request
from flask_appbuilder.exceptions import ApplyFilterException
from flask_appbuilder.models.filters import Filters
from flask_appbuilder.models.sqla.filters import FilterRelationOneToManyEqual, SQLAFilterConverter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.utils.base import get_column_leaf, get_column_root_relation, is_column_dotted
from sqlalchemy import ARRAY, String, and_, bindparam, event, func, literal, or_, select, true, union_all
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Load, aliased, contains_eager, defaultload, joinedload, lazyload
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BooleanClauseList

from app.access import scope
from app.views.filter_values import whole_number
from app.views.security import current_principal

# Lists count their rows up to this many; past it they show "10,000+" (and the REST list
# answers count 10,001 with "count_capped": true): counting a million rows exactly would cost
# more than the page itself, and no one pages that far instead of filtering.
COUNT_CAP = 10_000
# The home page's tiles and 待我处理 badges count up to 999 and show "999+" past it, as the bell
# shows "99+": a badge says how much is waiting, the list behind it says exactly.
HOME_CAP = 999


# A page's rows and a shown row are read by key with their LEFT JOINed relations (seven for a REST
# list of cases): PostgreSQL spent 4–7 ms weighing the order of those joins and 0.5 ms running
# them, at any size. Their written order (the case, then each relation by its key) is the best
# one, so in a request that only reads (GET) such a statement is planned as written on PostgreSQL:
# join_collapse_limit = 1 for the rest of that request's transaction, sent with the statement.
PLAN_AS_WRITTEN = "portal_plan_as_written"


@event.listens_for(Engine, "before_cursor_execute", retval=True)
def _plan_as_written(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> tuple:
    if context is not None and not many and context.execution_options.get(PLAN_AS_WRITTEN):
        if conn.dialect.name == "postgresql" and has_request_context() and request.method in ("GET", "HEAD"):
            statement = "SET LOCAL join_collapse_limit = 1; " + statement
    return statement, parameters


class CappedCount(int):
    """A row count that stopped one past its cap: shown as "10,000+" (the cap and a plus), still
    a number to page by."""

    def __str__(self) -> str:
        return f"{int(self) - 1:,}+"  # one past the cap: more than the cap


def capped_sum(counts: Iterable[int]) -> int:
    """The sum of counts some of which may be capped: a CappedCount shown as more than the sum
    of what was counted ("1,499+" for 999+ and 500)."""
    counts = list(counts)
    total = sum(counts)
    over = sum(1 for c in counts if isinstance(c, CappedCount))
    return CappedCount(total - over + 1) if over else total


def capped(count: int, cap: Optional[int] = None) -> int:
    """``count`` as a list shows it: past ``cap`` (COUNT_CAP), a CappedCount ("10,000+"), also for
    a sum of counts each stopped one past the cap."""
    cap = COUNT_CAP if cap is None else cap
    return CappedCount(min(count, cap + 1)) if count > cap else count


def capped_counts_statement(
    model: type,
    named: Iterable[tuple[str, Any]],
    cap: int,
    branches: Optional[list[Any]] = None,
    within: Collection[str] = (),
) -> Any:
    """(name, rows) of each named condition and scope branch, one UNION ALL; :func:`summed` adds up
    its rows: rows of ``model`` meeting each named condition, each counted over at most ``cap`` + 1 of
    them; conditions no row meets are left out. Only a constant is selected, so that an index
    holding the condition's columns answers alone.

    ``branches``, the OR-ed conditions of a scope (``scope.branches``), are counted apart, each
    leaving out the earlier ones (see ``disjoint``): each is then read from its own index. The
    conditions named in ``within`` hold only rows inside the scope already (a head's department
    steps): they are counted once, without the branches."""
    every = disjoint(branches or [true()])
    return union_all(
        *(
            select(literal(name).label("name"), func.count().label("n")).select_from(
                select(literal(1)).select_from(model).where(branch, condition).limit(cap + 1).subquery()
            )
            for name, condition in named
            for branch in ([true()] if name in within else every)
        )
    )


def capped_counts_of_statement(
    col: Any, keys: Iterable[str], cap: int, branches: Optional[list[Any]], dialect: str
) -> Any:
    """``capped_counts_statement`` of the rows whose column ``col`` holds each of ``keys`` (the same
    counts), for a database of ``dialect``.

    On PostgreSQL the keys are one array and each branch counts them in one LATERAL subquery,
    planned once per branch instead of once per key and branch: planning the thirty parts of a
    head's status tiles (ten statuses, three branches) took 5 ms at the home page, running them 2."""
    keys = list(keys)
    if dialect != "postgresql":
        return capped_counts_statement(col.table, [(key, col == key) for key in keys], cap, branches)
    # unnest() of one array parameter, not a VALUES list: SQLAlchemy compiles a VALUES list of
    # literal rows anew on every call (2 ms a home page), a bound array once.
    wanted = (
        func.unnest(bindparam("wanted_keys", keys, type_=ARRAY(String))).table_valued("key").render_derived("wanted")
    )
    parts = []
    for branch in disjoint(branches or [true()]):
        rows = (
            select(literal(1))
            .select_from(col.table)
            .where(branch, col == wanted.c.key)
            .limit(cap + 1)
            .correlate(wanted)
        )
        counted = select(func.count().label("n")).select_from(rows.subquery()).lateral("counted")
        parts.append(select(wanted.c.key, counted.c.n).select_from(wanted.join(counted, true())))
    return union_all(*parts)


def summed(rows: Iterable[tuple[str, int]], cap: int) -> dict[str, int]:
    """{name: its rows} of the (name, rows) rows of a UNION ALL of counts, each name's branches
    summed; names without a row left out, counts past ``cap`` capped."""
    counts: dict[str, int] = {}
    for name, n in rows:
        counts[name] = counts.get(name, 0) + n
    return {name: capped(n, cap) for name, n in counts.items() if n}


def disjoint(branches: list[Any]) -> list[Any]:
    """OR-ed conditions as conditions no two rows share: each leaves out the earlier ones
    (``IS NOT TRUE``, so that a row where an earlier one is unknown is kept too)."""
    return [and_(b, *(earlier.is_not(True) for earlier in branches[:i])) for i, b in enumerate(branches)]


def kept(owner: Any, store: str, key: Any, build: Callable[[], Any], limit: int = 512) -> Any:
    """``build()`` remembered on ``owner`` (an interface or a view: one per process) under ``key``, in
    its dictionary ``store``: what depends only on the owner's fixed setup (its model, columns,
    relations, a language) is built once, not on every request. Past ``limit`` keys the store
    starts over, whatever asks."""
    made = owner.__dict__.setdefault(store, {})
    if key not in made:
        if len(made) >= limit:
            made.clear()
        made[key] = build()
    return made[key]


class PortalFilters(Filters):
    """FAB's filters of a list, with each column's filter instances built once per interface.

    FAB builds the filters of every column of the model (sixty columns, four to ten filters each)
    whenever it makes a Filters object, three times a list page. The instances hold only their
    column and interface, so they are shared; each Filters object gets its own lists of them."""

    def _get_filters(self, cols: list[str]) -> dict[str, list[Any]]:
        built = kept(
            self.datamodel,
            "_built_filters",
            (self.filter_converter, tuple(cols)),
            lambda: super(PortalFilters, self)._get_filters(cols),
        )
        return {name: list(filters) for name, filters in built.items()}

    def get_joined_filters(self, filters: Any) -> Any:
        joined = PortalFilters(self.filter_converter, self.datamodel)
        joined.filters, joined.values = self.filters + filters.filters, self.values + filters.values
        return joined

    def copy(self) -> Any:
        copied = PortalFilters(self.filter_converter, self.datamodel)
        copied.filters, copied.values = list(self.filters), list(self.values)
        return copied


class FilterRelationKeyEqual(FilterRelationOneToManyEqual):
    """``rel_o_m`` on a many-to-one relation of the model itself: its foreign key compared with the
    chosen id. FAB loaded the related row first, to compare the relation with it: one statement
    more on every list filtered by department, level or category, each a round trip and a row to
    build. An id that is no whole number is refused as FAB refused it (the list answers 400); an id
    of no row matches no row (FAB's comparison with the missing row read "no relation at all")."""

    def apply(self, query: Any, value: Any) -> Any:
        prop = self.datamodel.list_properties.get(self.column_name)
        pairs = getattr(prop, "local_remote_pairs", None) or ()
        if len(pairs) != 1 or not self.datamodel.is_relation_many_to_one(self.column_name):
            return super().apply(query, value)
        try:
            if isinstance(value, float):  # a key is never written as a fraction, not even 3.0
                raise ValueError(value)
            key = whole_number(value)
        except ValueError as exc:
            raise ApplyFilterException(exception=exc) from exc
        return query.filter(pairs[0][0] == key)


class PortalFilterConverter(SQLAFilterConverter):
    """FAB's converter, with :class:`FilterRelationKeyEqual` for the model's many-to-one relations."""

    conversion_table = tuple(
        (kind, [FilterRelationKeyEqual if f is FilterRelationOneToManyEqual else f for f in filters])
        if kind == "is_relation_many_to_one"
        else (kind, filters)
        for kind, filters in SQLAFilterConverter.conversion_table
    )


class PortalInterface(SQLAInterface):
    """FAB's model interface with a lean count and a lean page.

    FAB counts a list over every shown column and the LEFT JOINs of its relations wrapped in a
    subquery, and pages it in one statement with those joins: at a million rows the count cost
    most, and PostgreSQL spent 18–27 ms weighing join orders for 0.5 ms of work. Here the rows
    are counted (up to COUNT_CAP + 1) and the page's keys found over the model's own table with
    the filters only, both in one statement; the page's rows are then read by key with their
    related columns."""

    filter_converter_class = PortalFilterConverter

    def _lean(self, query: Any, filters: Any, order: tuple[str, str] = ("", ""), page: Any = None, size: Any = None):
        """The list's keys, filtered, ordered and paged over the model's own table; None when a
        filter or the order joined another table (FAB's own statements then)."""
        plain = query.options(lazyload("*"))  # without the eagerly joined relations
        statement = self._apply_inner_all(plain, filters, *order, page, size, aliases_mapping={}).statement
        # Asked of the statement's own joins, not of get_final_froms(), which compiles the whole
        # ORM statement (≈8 ms a list page).
        if statement._setup_joins or statement._from_obj:
            return None
        return statement.with_only_columns(self._key()).select_from(self.obj.__table__)

    def get_filters(self, search_columns: Any = None, search_filters: Any = None) -> Any:
        return PortalFilters(self.filter_converter_class, self, search_columns or [], search_filters)

    def get_inner_filters(self, filters: Any) -> Any:
        """FAB's filters of the inner query (a model column, or a many-to-one or one-to-one
        relation's), made as PortalFilters."""
        inner = PortalFilters(self.filter_converter_class, self)
        if filters:
            kept = []
            for flt, value in zip(filters.filters, filters.values, strict=True):
                root = flt.column_name.split(".", 1)[0]
                if (
                    "." not in flt.column_name
                    or self.is_relation_many_to_one(root)
                    or self.is_relation_one_to_one(root)
                ):
                    kept.append((flt.column_name, flt.__class__, value))
            inner.add_filter_list(kept)
        return inner

    def _key(self) -> Any:
        return self.obj.__table__.primary_key.columns[0]

    def query_count(self, query: Any, filters: Any = None, select_columns: Any = None) -> int:
        lean = self._lean(query, filters)
        if lean is None:
            return super().query_count(query, filters, select_columns)
        return capped(sum(int(k) for _part, k in self.session.execute(union_all(*self._counted(lean)))))

    def _counted(self, lean: Any) -> list[Any]:
        """(part 0, rows counted up to COUNT_CAP + 1) of each branch of the caller's scope.

        A head's scope ORs his department, the escalated cases and those he registered, which
        PostgreSQL reads by a scan of the table; apart, each branch is counted over its own index
        (from the index alone: only a constant is selected). Each branch leaves out the earlier
        ones (``disjoint``), so no case is counted twice."""
        rows = lean.with_only_columns(literal(1)).order_by(None).offset(None).limit(COUNT_CAP + 1)
        return [
            select(literal(0).label("part"), func.count().label("k")).select_from(part.subquery())
            for part in _scope_apart(rows, self.obj)
        ]

    def query(
        self,
        filters: Any = None,
        order_column: str = "",
        order_direction: str = "",
        page: Optional[int] = None,
        page_size: Optional[int] = None,
        select_columns: Optional[list[str]] = None,
        outer_default_load: bool = False,
    ) -> tuple[int, list[Any]]:
        """(rows counted up to the cap, the page's rows): the count and the page's keys in one
        statement, then the page's rows by key (see the class)."""
        base = self.session.query(self.obj)
        lean = self._lean(base, filters, (order_column, order_direction), page, page_size) if page_size else None
        if lean is None:
            return super().query(
                filters, order_column, order_direction, page, page_size, select_columns, outer_default_load
            )
        paged = lean.subquery()
        rows = self.session.execute(
            union_all(*self._counted(lean), select(literal(1).label("part"), paged.c[0].label("k")))
        ).all()
        count = capped(sum(int(k) for part, k in rows if part == 0))
        keys = [k for part, k in rows if part == 1]
        if not keys:
            return count, []
        # The filters chose the keys; the page's statement only orders and reads them. It depends on
        # the order and the columns alone, so it is built once for each: with its loader options a
        # REST list's statement cost 1–2 ms to build and to work out its cache key, every request.
        page_statement = kept(
            self,
            "_page_statements",
            (order_column, order_direction, tuple(select_columns or ()), outer_default_load),
            lambda: (
                self.apply_all(
                    base.filter(self._key().in_(bindparam("page_keys", expanding=True))),
                    None,
                    order_column,
                    order_direction,
                    select_columns=select_columns,
                    outer_default_load=outer_default_load,
                ).statement
            ),
        )
        found = self.session.execute(page_statement, {"page_keys": keys}).unique().all()
        name = self.obj.__name__
        return count, [getattr(item, name) if hasattr(item, name) else item for item in found]

    def apply_inner_select_joins(
        self, query: Any, select_columns: Optional[list[str]] = None, aliases_mapping: Optional[dict] = None
    ) -> Any:
        """FAB's joins for the related columns a REST list or show reads (original.number), without
        each related row's own eagerly joined relations: FAB adds the related rows as entities, and
        the case's self-reference brought five more LEFT JOINs to a statement that needs seven
        (whose planning is most of a REST list's database time at a million cases).

        The model's own columns (with the keys of the joined relations) are chosen in one
        load_only, and each relation's columns in one: FAB added an option per column, each
        copying the query and growing its cache key (a third of a REST show's time)."""
        if not select_columns:
            return query
        own = [getattr(self.obj, c) for c in select_columns if "." not in c and self._plain(c)]
        leaves = _leaves(select_columns)
        joined = [
            root for root in leaves if self.is_relation_many_to_one(root) or self.is_relation_many_to_many_special(root)
        ]
        for root in joined:  # each joined relation's key, so that reading it loads nothing more
            own.extend(getattr(self.obj, fk.name) for fk in getattr(self.obj, root).property.local_columns)
        if own:
            own = list(dict.fromkeys(own))
            query = query.options(
                self._option(("inner", *(c.key for c in own)), lambda: Load(self.obj).load_only(*own))
            )
        for root in joined:
            query = self._query_join_relation(query, root, aliases_mapping=aliases_mapping)
            related = self.get_alias_mapping(root, aliases_mapping)
            names = leaves[root]

            def eager(related: Any = related, root: str = root, names: tuple = names) -> tuple:
                columns = [getattr(related, name) for name in names]
                relation = getattr(self.obj, root)
                return contains_eager(relation.of_type(related)).load_only(*columns), Load(related).load_only(*columns)

            query = query.add_entity(related).options(*self._option(("inner join", related, root, names), eager))
        for root in self._related_roots(select_columns):
            target = self.get_alias_mapping(root, aliases_mapping)
            if target is not self.obj:
                query = query.options(self._option(("lazy", target), lambda t=target: Load(t).lazyload("*")))
        return query

    def _plain(self, name: str) -> bool:
        """A column of the model's own table (not a relation, property or function); known once per
        interface (FAB asks the mapper anew each time: 150 times a REST show)."""
        return kept(
            self, "_plain_names", name, lambda: not self.is_relation(name) and not self.is_property_or_function(name)
        )

    def _option(self, key: tuple, build: Callable[[], Any]) -> Any:
        """A loader option built once per interface and ``key``: options are immutable, and building
        one per request (each copying itself per column, then its cache key) was a fifth of a REST
        show's CPU."""
        return kept(self, "_options", key, build)

    def apply_outer_select_joins(
        self,
        query: Any,
        select_columns: Optional[list[str]] = None,
        outer_default_load: bool = False,
        aliases_mapping: Optional[dict] = None,
    ) -> Any:
        """FAB's outer select of a REST show (or a list with a to-many column), with the model's own
        columns in one load_only and each many-to-one relation's columns in one: FAB added one
        option per column (sixty for a case), and building them and their cache key was nearly
        half of a REST show's time. A to-many relation is joined once (FAB joined it once per
        column) with its columns in one option too; with ``outer_default_load``, its columns are
        loaded by its own loader, as FAB does. The options are built once per interface."""
        if not select_columns:
            return query
        aliases_mapping = aliases_mapping if aliases_mapping is not None else {}
        own = [c for c in select_columns if "." not in c]
        query = super().apply_outer_select_joins(query, [c for c in own if not self._plain(c)], False, aliases_mapping)
        plain = tuple(c for c in own if self._plain(c))
        if plain:
            query = query.options(
                self._option(
                    ("outer", *plain), lambda: Load(self.obj).load_only(*(getattr(self.obj, c) for c in plain))
                )
            )
        for root, names in _leaves(select_columns).items():
            to_many = self.is_relation_many_to_many(root) or self.is_relation_one_to_many(root)
            if to_many and outer_default_load:  # FAB's: the relation's columns by its default loader

                def default(root: str = root, names: tuple = names) -> Any:
                    related = self.get_related_model(root)
                    return (
                        Load(self.obj)
                        .defaultload(getattr(self.obj, root))
                        .load_only(*(getattr(related, n) for n in names))
                    )

                query = query.options(self._option(("outer default", root, names), default))
                continue
            alias = aliases_mapping.setdefault(root, self._outer_alias(root))
            attr = getattr(self.obj, root)
            query = query.join(alias, attr, isouter=True).options(
                self._option(
                    ("outer join", alias, root, names),
                    lambda attr=attr, alias=alias, names=names: contains_eager(attr.of_type(alias)).load_only(
                        *(getattr(alias, n) for n in names)
                    ),
                )
            )
        return query

    def _outer_alias(self, root: str) -> Any:
        """The alias FAB names after a relation (``aliased(Customer, name="customer")``), made once
        per interface."""
        return kept(self, "_outer_aliases", root, lambda: aliased(self.get_related_model(root), name=root))

    def _query_join_relation(self, query: Any, root_relation: str, aliases_mapping: Optional[dict] = None) -> Any:
        """FAB's LEFT JOIN of a dotted column's relation (original.number → original), with the
        relation's alias and join condition built once per interface: FAB aliased the related
        model anew on every request, and aliasing the case itself (its sixty columns) for
        ``original`` was a third of a REST show's time."""
        if aliases_mapping is None:
            aliases_mapping = {}
        for target, on, alias in self._relation_joins(root_relation):
            if alias:
                aliases_mapping[root_relation] = target
            query = query.join(target, on, isouter=True)
        return query

    def _relation_joins(self, root_relation: str) -> list[tuple[Any, Any, bool]]:
        """(joined model or alias, join condition, aliased) of each step of ``root_relation``, as
        FAB's _query_join_relation builds them; kept per interface (aliases are reusable)."""

        def build() -> list[tuple[Any, Any, bool]]:
            steps = []
            for model_relation, relation_join in self.get_related_model_and_join(root_relation):
                if hasattr(relation_join, "clauses"):  # a custom relation: joined as it is
                    steps.append((model_relation, relation_join, False))
                    continue
                alias = aliased(model_relation, name=root_relation)
                pk = self.get_pk(alias)
                side = relation_join.left if relation_join.left.foreign_keys else relation_join.right
                steps.append((alias, BinaryExpression(side, pk, relation_join.operator), True))
            return steps

        return kept(self, "_joins", root_relation, build)

    def _related_roots(self, select_columns: Optional[list[str]]) -> list[str]:
        """The many-to-one relations whose columns ``select_columns`` name (original.number → original)."""
        roots = {c.split(".", 1)[0] for c in select_columns or () if "." in c}
        return [root for root in sorted(roots) if self.is_relation_many_to_one(root)]

    # Many-to-one relations a screen lists: loaded with the page in one statement (set by
    # PortalModelView from its list columns), not one lazy load per row and relation.
    eager: tuple[str, ...] = ()

    def apply_all(
        self,
        query: Any,
        filters: Any = None,
        order_column: str = "",
        order_direction: str = "",
        page: Optional[int] = None,
        page_size: Optional[int] = None,
        select_columns: Optional[list[str]] = None,
        outer_default_load: bool = False,
    ) -> Any:
        query = super().apply_all(
            query, filters, order_column, order_direction, page, page_size, select_columns, outer_default_load
        )
        if self.eager and not select_columns:
            query = query.options(*(joinedload(getattr(self.obj, name)) for name in self.eager))
        # The related rows a REST list shows a column of: not their own eager joins through the
        # relation either (see apply_inner_select_joins).
        for name in self._related_roots(select_columns):
            query = query.options(defaultload(getattr(self.obj, name)).lazyload("*"))
        return query.execution_options(**{PLAN_AS_WRITTEN: True})


def _leaves(select_columns: list[str]) -> dict[str, tuple[str, ...]]:
    """{relation: its columns, each once} of the dotted select columns (customer.name → customer:
    (name,)), read as FAB reads them (the relation and the column after it)."""
    leaves: dict[str, dict[str, None]] = {}
    for c in select_columns:
        if is_column_dotted(c):
            leaves.setdefault(get_column_root_relation(c), {})[get_column_leaf(c)] = None
    return {root: tuple(names) for root, names in leaves.items()}


def _scope_apart(statement: Any, model: type) -> list[Any]:
    """``statement`` once per OR-ed branch of the caller's scope of ``model``, each branch leaving
    out the earlier ones; ``[statement]`` when the scope is no OR or the statement holds none."""
    branches = scope.branches(model, current_principal())
    if len(branches) < 2:
        return [statement]
    whole = or_(*branches)
    # The scope is one of the statement's own WHERE criteria (ScopeFilter adds it as it is): only
    # that criterion is swapped. Cloning the whole statement to find it (replacement_traverse) cost
    # 1.1 ms of a head's list.
    criteria = statement._where_criteria
    at = next(
        (
            i
            for i, c in enumerate(criteria)
            if isinstance(c, BooleanClauseList) and c.operator is operators.or_ and c.compare(whole)
        ),
        None,
    )
    if at is None:
        return [statement]
    parts = []
    for alone in disjoint(branches):
        part = statement._generate()
        part._where_criteria = (*criteria[:at], alone, *criteria[at + 1 :])
        parts.append(part)
    return parts
