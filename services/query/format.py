"""How every number of the product is written, in sentences, tables, tiles and hovers: counts
with thousands separators, everything else to one decimal with its unit. Times are written by
`services.query.timerange.iso_z` (ISO 8601, UTC, `Z`); `plain` writes a whole typed answer as
JSON data the same way."""
from __future__ import annotations

import math
from typing import Any

import orjson


def unit_suffix(unit: str) -> str:
    """" %", " ms", or nothing (counts, custom units)."""
    return {"%": " %", "ms": " ms"}.get(unit, "")


def number(value: float | None, unit: str, missing: str = "—") -> str:
    """"12,345" for counts, "97.3 %", "412.0 ms", "1.5" otherwise; `missing` for no value."""
    if value is None or not math.isfinite(value):
        return missing
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:,.1f}{unit_suffix(unit)}"


def _sign(value: float) -> str:
    return "+" if value >= 0 else "−"


def signed(value: float, unit: str) -> str:
    """A signed difference: "+118", "−6.7 points" (of a percentage), "+462.0 ms"."""
    sign = _sign(value)
    size = abs(value)
    if unit == "count":
        return f"{sign}{size:,.0f}"
    if unit == "%":
        return f"{sign}{size:,.1f} points"
    return f"{sign}{size:,.1f}{unit_suffix(unit)}"


def signed_change(change: float) -> str:
    """A change (in percent, or in percentage points) with its sign, as `signed` writes it,
    to one decimal, or two where one would read 0.0 beside words or an arrow that say it
    moved ("−0.04", not "−0.0"); no sign on a change that rounds to none ("0.00", not "−0.00")."""
    if round(change, 2) == 0:
        return "0.00"
    size = abs(change)
    return f"{_sign(change)}{size:.1f}" if round(size, 1) != 0 else f"{_sign(change)}{size:.2f}"


def in_words(value: float | None, unit: str) -> str:
    """A number inside a sentence: as `number`, "no data" for no value."""
    return number(value, unit, "no data")


JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def to_json(answer: Any) -> bytes:
    """A typed answer (frozen dataclasses, tuples, datetimes, numpy numbers) as JSON: objects,
    arrays, ISO 8601 UTC times ending in Z, NaN as null. What the API sends."""
    return orjson.dumps(answer, option=JSON_OPTIONS)


def plain(answer: Any) -> Any:
    """The same answer as JSON data (dicts and lists), for the dashboard's browser store and
    figures drawn from it."""
    return orjson.loads(to_json(answer))
