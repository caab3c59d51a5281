"""Custom metrics: formulas saved by name, validated on every save, usable wherever a
catalogue metric is (charts, trends, comparisons, drill-down, correlations)."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, delete, func, insert, select, update

from services.formulas import parser as formulas
from services.query.catalogue import CATALOGUE, formula_metric
from services.query.context import QueryContext, context_at
from services.query.engine import run_query
from services.query.plan import build_query
from services.query.timerange import NotFound, QueryError, iso_z
from services.store.schema import alert_rules, custom_metrics

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
UNITS = ("%", "ms", "count", "none")
MAX_METRICS = 500
_WRITE_LOCK = 0x6E61_6D65  # advisory lock id: metric writes one at a time (no cycle from two concurrent saves)


@dataclass(frozen=True)
class CustomMetric:
    name: str
    display_name: str
    formula: str
    unit: str
    description: str
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict:
        return {"name": self.name, "display_name": self.display_name, "formula": self.formula, "unit": self.unit,
                "description": self.description,
                "created_at": iso_z(self.created_at), "updated_at": iso_z(self.updated_at)}


def list_metrics(conn: Connection) -> list[CustomMetric]:
    rows = conn.execute(select(custom_metrics).order_by(custom_metrics.c.name))
    return [CustomMetric(**row._mapping) for row in rows]


def get_custom(conn: Connection, name: str) -> CustomMetric:
    if not isinstance(name, str) or not NAME.match(name):  # nothing else was ever saved
        raise QueryError(f"{str(name)[:40]!r} is not a custom metric's name: names are 1 to 40 lowercase letters, "
                         "digits and _, starting with a letter", "name")
    row = conn.execute(select(custom_metrics).where(custom_metrics.c.name == name)).first()
    if row is None:
        raise NotFound(f"no custom metric named {name!r}", "name")
    return CustomMetric(**row._mapping)


def formulas_by_name(conn: Connection) -> dict[str, str]:
    return dict(conn.execute(select(custom_metrics.c.name, custom_metrics.c.formula)).all())


def _expansion_error(formula: str, custom: Mapping[str, str]) -> formulas.FormulaError | None:
    """Why `formula` could not be computed once every custom metric in it is expanded into
    catalogue metrics (too long, too deep, circular), or None."""
    try:
        tree = formulas.expand(formulas.parse(formula, list(CATALOGUE) + list(custom)), custom, CATALOGUE)
        formulas.parse(formulas.to_text(tree), CATALOGUE)  # what every use of the metric parses
    except formulas.FormulaError as exc:
        return exc
    return None


def check_formula(conn: Connection, formula: str, own_name: str | None = None) -> dict:
    """{"valid", "errors": [{"message", "position"}], "references"} for the form and the API."""
    custom = formulas_by_name(conn)
    if own_name is not None:
        custom[own_name] = formula
    names = list(CATALOGUE) + sorted(custom)
    errors = formulas.validate(formula, names)
    references: list[str] = []
    if not errors:
        references = formulas.references(formulas.parse(formula, names))
        problem = _expansion_error(formula, custom)
        if problem is not None:
            expanded = any(r in custom for r in references)
            errors = [formulas.FormulaError(("once the custom metrics in it are expanded, " if expanded else "")
                                            + problem.message, problem.position)]
    return {"valid": not errors, "errors": [{"message": e.message, "position": e.position} for e in errors],
            "references": references}


def _validated(conn: Connection, fields: Mapping, name: str, creating: bool) -> dict:
    if not isinstance(fields, Mapping):
        raise QueryError("send a JSON object with name, formula, unit, display_name and description", "body")
    allowed = {"name", "display_name", "formula", "unit", "description"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise QueryError(f"unknown field {unknown[0][:40]!r}; fields are {', '.join(sorted(allowed))}", unknown[0][:40])
    if not isinstance(name, str) or not NAME.match(name):
        raise QueryError("name must be 1–40 lowercase letters, digits or _, starting with a letter", "name")
    if name in CATALOGUE:
        raise QueryError(f"{name!r} is a built-in metric; pick another name", "name")
    formula = fields.get("formula")
    if not isinstance(formula, str) or not formula.strip():
        raise QueryError("formula is required, e.g. (clicked / delivered) * 100", "formula")
    check = check_formula(conn, formula, name)
    if not check["valid"]:
        first = check["errors"][0]
        raise QueryError(first["message"], "formula")
    if not creating:  # the metrics built on this one must stay computable with its new formula
        custom = {**formulas_by_name(conn), name: formula}
        for other in _users(custom, name):
            problem = _expansion_error(custom[other], custom)
            if problem is not None:
                raise QueryError(f"custom metric {other!r} uses {name!r} and could no longer be computed: "
                                 f"{problem.message}", "formula")
    unit = fields.get("unit", "none")
    if unit not in UNITS:
        raise QueryError(f"unit must be one of {', '.join(UNITS)}", "unit")
    display = fields.get("display_name") or name
    description = fields.get("description") or ""
    if not isinstance(display, str) or len(display) > 100 or "\x00" in display:
        raise QueryError("display_name must be text of at most 100 characters (no NUL)", "display_name")
    if not isinstance(description, str) or len(description) > 1000 or "\x00" in description:
        raise QueryError("description must be text of at most 1,000 characters (no NUL)", "description")
    return {"name": name, "display_name": display.strip(), "formula": formula.strip(), "unit": unit,
            "description": description.strip()}


def _lock_writes(conn: Connection) -> None:
    """Metric writes one at a time (Postgres): two concurrent saves that would each be fine
    alone (a = b + 1, b = a + 1) cannot both pass the cycle check."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_WRITE_LOCK)))


def _users(custom: Mapping[str, str], name: str) -> list[str]:
    """The custom metrics whose formula names `name` (each formula parsed once)."""
    names = list(CATALOGUE) + list(custom)
    users = []
    for other, formula in custom.items():
        if other == name or name not in formula:
            continue
        try:
            if name in formulas.references(formulas.parse(formula, names)):
                users.append(other)
        except formulas.FormulaError:
            continue
    return sorted(users)


def create_metric(conn: Connection, fields: Mapping) -> CustomMetric:
    _lock_writes(conn)
    name = fields.get("name") if isinstance(fields, Mapping) else None
    values = _validated(conn, fields, name, creating=True)
    if conn.execute(select(custom_metrics.c.name).where(custom_metrics.c.name == name)).first():
        raise QueryError(f"a custom metric named {name!r} exists; edit it instead", "name")
    count = conn.execute(select(func.count()).select_from(custom_metrics)).scalar()
    if count >= MAX_METRICS:
        raise QueryError(f"there are already {count:,} custom metrics, the most allowed; delete unused ones first",
                         "name")
    now = datetime.now(timezone.utc)
    conn.execute(insert(custom_metrics).values(**values, created_at=now, updated_at=now))
    return get_custom(conn, name)


def update_metric(conn: Connection, name: str, fields: Mapping) -> CustomMetric:
    _lock_writes(conn)
    current = get_custom(conn, name)
    merged = {**current.as_dict(), **(fields if isinstance(fields, Mapping) else {})}
    merged = {k: v for k, v in merged.items() if k in ("name", "display_name", "formula", "unit", "description")}
    if merged.get("name") != name:
        raise QueryError("a custom metric cannot be renamed; create a new one", "name")
    values = _validated(conn, merged, name, creating=False)
    conn.execute(update(custom_metrics).where(custom_metrics.c.name == name)
                 .values(**values, updated_at=datetime.now(timezone.utc)))
    return get_custom(conn, name)


def delete_metric(conn: Connection, name: str) -> None:
    """Refused while another computable metric uses it; a metric that can no longer be
    computed (it is part of a cycle saved before cycles were refused) does not hold it."""
    _lock_writes(conn)
    get_custom(conn, name)
    custom = formulas_by_name(conn)
    users = [other for other in _users(custom, name) if _expansion_error(custom[other], custom) is None]
    if users:
        listed = ", ".join(users[:5]) + (f" and {len(users) - 5:,} more" if len(users) > 5 else "")
        raise QueryError(f"{name!r} is used by {listed}; change or delete those first", "name")
    watching = conn.execute(select(alert_rules.c.name).where(alert_rules.c.metric == name)
                            .order_by(alert_rules.c.name)).scalars().all()
    if watching:
        listed = ", ".join(repr(w) for w in watching[:5]) + (f" and {len(watching) - 5:,} more" if len(watching) > 5 else "")
        raise QueryError(f"{name!r} is watched by the alert rule{'s' if len(watching) > 1 else ''} {listed}; "
                         "change or delete those first", "name")
    conn.execute(delete(custom_metrics).where(custom_metrics.c.name == name))


def preview(conn: Connection, formula: str, start=None, end=None, group_by=("time",), filters=None, *,
            unit: str = "none", context: QueryContext | None = None):
    """A series of an unsaved formula, to see it before saving."""
    check = check_formula(conn, formula)
    if not check["valid"]:
        first = check["errors"][0]
        raise QueryError(f"{first['message']}", "formula")
    custom = formulas_by_name(conn)
    tree = formulas.expand(formulas.parse(formula, list(CATALOGUE) + list(custom)), custom, CATALOGUE)
    metric = formula_metric("preview", formulas.to_text(tree), unit if unit in UNITS else "none")
    context = context or context_at()
    query = build_query(metric, group_by, start, end, filters or {}, None, context.now, context.channels)
    return run_query(conn, query, context)
