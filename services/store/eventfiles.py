"""Read event files (NDJSON or CSV) as a stream of (line number, event) pairs, so a file of
any size is ingested in batches without loading it whole."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import IO

import orjson

from services.store.ingest import UnreadableEvent

INT_FIELDS = ("template_id", "processing_time_ms")


class FileFormatError(ValueError):
    pass


def detect_format(filename: str) -> str:
    lower = filename.lower()
    if lower.endswith((".ndjson", ".jsonl", ".json")):
        return "ndjson"
    if lower.endswith(".csv"):
        return "csv"
    raise FileFormatError(f"cannot tell the format of {filename!r}: name it .ndjson, .jsonl or .csv, "
                          "or pass --format")


def read_ndjson(stream: IO[bytes]) -> Iterator[tuple[int, object]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield number, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield number, UnreadableEvent(f"line is not JSON: {exc}")


def read_csv(stream: IO[bytes]) -> Iterator[tuple[int, object]]:
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    try:
        yield from _csv_rows(csv.DictReader(text))
    finally:
        text.detach()  # leave the caller's stream open


def _csv_rows(reader: csv.DictReader) -> Iterator[tuple[int, object]]:
    for row in reader:
        number = reader.line_num
        event: dict[str, object] = {k: v for k, v in row.items() if k is not None and v not in ("", None)}
        try:
            for name in INT_FIELDS:
                if name in event:
                    event[name] = int(str(event[name]))
            if "metadata" in event:
                event["metadata"] = orjson.loads(str(event["metadata"]))
        except (ValueError, orjson.JSONDecodeError) as exc:
            yield number, UnreadableEvent(f"cannot read the row: {exc}")
            continue
        yield number, event
