"""Every difference between Postgres and SQLite lives here: bulk writes (COPY vs
executemany), partitions, time bucketing and locks. Nothing a user types reaches the SQL
built here; identifiers come from our own constants."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import cache

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from services.store.schema import EVENT_COLUMNS, MIGRATIONS, NO_TEMPLATE

SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores datetimes on SQLite
PARTITION_DAYS_AHEAD = 7
_PARTITION_LOCK = 0x6E615F70  # advisory lock id serialising partition creation ("na_p")


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def upsert(conn: Connection, table):
    """The dialect's INSERT, which takes ON CONFLICT (on_conflict_do_update / _do_nothing)."""
    if is_postgres(conn):
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def outside_transaction(conn: Connection):
    """Postgres: run the next statements without a transaction (no BEGIN, no ROLLBACK);
    returns a function that puts the connection back to one-snapshot (repeatable read)
    transactions, as the read engine makes them. SQLite reads stay as they are."""
    if not is_postgres(conn):
        return lambda: None
    conn.execution_options(isolation_level="AUTOCOMMIT")

    def back() -> None:
        conn.commit()  # ends SQLAlchemy's bookkeeping only: in autocommit nothing is sent
        conn.execution_options(isolation_level="REPEATABLE READ")
    return back


def vacuum(engine, table: str) -> None:
    """Postgres: clear a table's dead rows now (outside any transaction)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"VACUUM {table}"))


def row_versions(engine, tables: list[str]) -> dict[str, tuple[int, int]]:
    """Postgres: {table: (live rows, dead row versions)} of tables of the current schema, as
    their statistics count them (they trail commits by up to seconds); {} elsewhere."""
    if engine.dialect.name != "postgresql":
        return {}
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT relname, n_live_tup, n_dead_tup FROM pg_stat_user_tables "
                                 "WHERE relid = ANY(SELECT to_regclass(t) FROM unnest(CAST(:t AS text[])) AS t)"),
                            {"t": tables}).all()
    return {name: (live, dead) for name, live, dead in rows}


def snapshot_isolation(engine) -> dict:
    """Execution options under which every statement of a transaction sees one snapshot
    (SQLite's transactions already do)."""
    return {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}


def sqlite_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime(SQLITE_TIME_FORMAT)


# ---------------------------------------------------------------- raw event writes

@contextmanager
def driver_errors(conn: Connection):
    """Errors from the driver's own cursor (COPY, executemany) become SQLAlchemy's, so
    callers handle one kind of database error whichever path wrote."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        yield
    except dbapi_error as exc:
        raise DBAPIError.instance(None, None, exc, dbapi_error) from exc


@dataclass(frozen=True)
class Inserted:
    """What a batch really added (duplicates excluded), and the minutes it touched."""
    rows: int
    first_bucket: datetime | None
    last_bucket: datetime | None


DELTA_COLUMNS = ("bucket", "channel", "template_id", "status", "latency_bucket", "event_count", "processing_sum",
                 "processing_min", "processing_max", "ingested_at")


def insert_events(conn: Connection, rows: Sequence[tuple], now: datetime) -> Inserted:
    """Insert rows (in EVENT_COLUMNS order, aware UTC datetimes, metadata as JSON text),
    skipping any whose (created_at, event_id) exists, and write the rollup deltas of the
    rows really inserted — both in the caller's transaction."""
    if not rows:
        return Inserted(0, None, None)
    with driver_errors(conn):
        if is_postgres(conn):
            return _copy_events(conn, rows, now)
        return _sqlite_events(conn, rows, now)


def touched_hours(rows: Sequence[tuple]) -> list[datetime]:
    """The hours (UTC, ascending) the rows' created_at fall in."""
    hours = {(t.year, t.month, t.day, t.hour) for t in (r[0].astimezone(timezone.utc) for r in rows)}
    return [datetime(*hour, tzinfo=timezone.utc) for hour in sorted(hours)]


def insert_events_only(conn: Connection, rows: Sequence[tuple], hours: Sequence[datetime]) -> Inserted:
    """Insert rows as `insert_events` does, without deltas (a backfill, rebuilt from raw).
    On Postgres the rows are first copied straight into the table — the fastest write
    there is — and only if one of them exists already does the batch take the
    de-duplicating path. The touched span is the batch's, duplicates included; `hours` are
    touched_hours(rows), which the caller needs too."""
    if not rows:
        return Inserted(0, None, None)
    first = min(r[0] for r in rows).astimezone(timezone.utc).replace(second=0, microsecond=0)
    last = max(r[0] for r in rows).astimezone(timezone.utc).replace(second=0, microsecond=0)
    with driver_errors(conn):
        if not is_postgres(conn):
            created, ingested = EVENT_COLUMNS.index("created_at"), EVENT_COLUMNS.index("ingested_at")
            raw = conn.connection.dbapi_connection
            before = raw.total_changes
            cursor = raw.cursor()
            cursor.executemany(f"INSERT OR IGNORE INTO notification_events ({', '.join(EVENT_COLUMNS)}) "
                               f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS)})",
                               ((*r[:created], sqlite_time(r[created]), *r[created + 1:ingested],
                                 sqlite_time(r[ingested]), *r[ingested + 1:]) for r in rows))
            cursor.close()
            return Inserted(raw.total_changes - before, first, last)
        from psycopg.errors import UniqueViolation

        ensure_partitions(conn, {hour.date() for hour in hours}, lookup_indexes=False)
        raw = conn.connection.dbapi_connection
        if len({(r[0], r[1]) for r in rows}) == len(rows):
            try:
                with raw.transaction(), raw.cursor() as cursor:  # a savepoint
                    _copy_in(cursor, "notification_events", rows)
                return Inserted(len(rows), first, last)
            except UniqueViolation:
                pass  # some of them were stored before: de-duplicate instead
        with raw.cursor() as cursor:
            _stage(cursor, rows)
            cursor.execute(f"INSERT INTO notification_events ({_EVENT_LIST}) SELECT {_EVENT_LIST} FROM ingest_staging "
                           "ON CONFLICT DO NOTHING")
            return Inserted(cursor.rowcount, first, last)


_EVENT_LIST = ", ".join(EVENT_COLUMNS)
# Postgres types of EVENT_COLUMNS, for COPY in binary
_EVENT_TYPES = ("timestamptz", "varchar", "varchar", "timestamptz", "varchar", "int4", "varchar", "varchar",
                "int4", "int2", "jsonb", "varchar", "varchar")
assert len(_EVENT_TYPES) == len(EVENT_COLUMNS)


@cache
def _jsonb_text_dumper():
    """Writes a str that already holds JSON text (validated metadata) as binary jsonb:
    psycopg's own jsonb dumper would store it as a JSON string."""
    from psycopg import postgres
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class JsonbText(Dumper):
        oid = postgres.types["jsonb"].oid
        format = Format.BINARY

        def dump(self, obj: str) -> bytes:
            return b"\x01" + obj.encode()  # jsonb's binary format: version 1, then the text

    return JsonbText


def _copy_in(cursor, table: str, rows: Sequence[tuple]) -> None:
    """COPY rows (EVENT_COLUMNS order) into `table` in binary: no value is formatted as text
    or parsed from it, on either side — a fifth of the client's time a row of text COPY."""
    cursor.adapters.register_dumper(None, _jsonb_text_dumper())
    with cursor.copy(f"COPY {table} ({_EVENT_LIST}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_EVENT_TYPES)
        for row in rows:
            copy.write_row(row)


def _stage(cursor, rows: Sequence[tuple]) -> None:
    """COPY `rows` into this session's empty staging table, ingest_staging (Postgres)."""
    cursor.execute("CREATE TEMP TABLE IF NOT EXISTS ingest_staging "
                   "(LIKE notification_events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
    cursor.execute("TRUNCATE ingest_staging")
    _copy_in(cursor, "ingest_staging", rows)


def _copy_events(conn: Connection, rows: Sequence[tuple], now: datetime) -> Inserted:
    ensure_partitions(conn, {r[0].astimezone(timezone.utc).date() for r in rows})
    columns = _EVENT_LIST
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cursor:
        _stage(cursor, rows)
        # one statement: the rows the conflict check let through are exactly the ones counted
        cursor.execute(f"""
            WITH inserted AS (
                INSERT INTO notification_events ({columns}) SELECT {columns} FROM ingest_staging
                ON CONFLICT DO NOTHING
                RETURNING created_at, channel, template_id, status, processing_time_ms, latency_bucket),
            deltas AS (
                INSERT INTO rollup_deltas ({', '.join(DELTA_COLUMNS)})
                SELECT date_trunc('minute', created_at), channel, coalesce(template_id, {NO_TEMPLATE}), status,
                       latency_bucket, count(*), coalesce(sum(processing_time_ms), 0), min(processing_time_ms),
                       max(processing_time_ms), %s
                FROM inserted GROUP BY 1, 2, 3, 4, 5
                RETURNING bucket, event_count)
            SELECT coalesce(sum(event_count), 0), min(bucket), max(bucket) FROM deltas""", (now,))
        count, first, last = cursor.fetchone()
    return Inserted(int(count), first, last)


SQLITE_MINUTE = "%Y-%m-%d %H:%M:00.000000"


def _sqlite_events(conn: Connection, rows: Sequence[tuple], now: datetime) -> Inserted:
    """SQLite has one writer at a time: with the write lock taken first, "not stored yet"
    read inside the transaction stays true until it commits."""
    created, ingested = EVENT_COLUMNS.index("created_at"), EVENT_COLUMNS.index("ingested_at")

    def to_sqlite(row: tuple) -> tuple:
        row = list(row)
        row[created], row[ingested] = sqlite_time(row[created]), sqlite_time(row[ingested])
        return tuple(row)

    columns = ", ".join(EVENT_COLUMNS)
    raw = conn.connection.dbapi_connection
    cursor = raw.cursor()
    try:
        cursor.execute("DELETE FROM rollup_deltas WHERE 0")  # takes the write lock before anything is read
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS ingest_staging AS SELECT * FROM notification_events WHERE 0")
        cursor.execute("DELETE FROM ingest_staging")
        cursor.executemany(f"INSERT INTO ingest_staging ({columns}) VALUES ({', '.join('?' for _ in EVENT_COLUMNS)})",
                           map(to_sqlite, rows))
        cursor.execute("DELETE FROM ingest_staging WHERE rowid NOT IN "
                       "(SELECT min(rowid) FROM ingest_staging GROUP BY created_at, event_id)")
        before = cursor.execute("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'rollup_deltas'"
                                ).fetchone()[0]
        cursor.execute(f"""
            INSERT INTO rollup_deltas ({', '.join(DELTA_COLUMNS)})
            SELECT strftime('{SQLITE_MINUTE}', s.created_at), s.channel, coalesce(s.template_id, {NO_TEMPLATE}),
                   s.status, s.latency_bucket, count(*), coalesce(sum(s.processing_time_ms), 0),
                   min(s.processing_time_ms), max(s.processing_time_ms), ?
            FROM ingest_staging s
            WHERE NOT EXISTS (SELECT 1 FROM notification_events e
                              WHERE e.created_at = s.created_at AND e.event_id = s.event_id)
            GROUP BY 1, 2, 3, 4, 5""", (sqlite_time(now),))
        count, first, last = cursor.execute(
            "SELECT coalesce(sum(event_count), 0), min(bucket), max(bucket) FROM rollup_deltas WHERE id > ?",
            (before,)).fetchone()
        cursor.execute(f"INSERT OR IGNORE INTO notification_events ({columns}) SELECT {columns} FROM ingest_staging")
    finally:
        cursor.close()
    parse = lambda text: None if text is None else datetime.strptime(text, SQLITE_TIME_FORMAT).replace(  # noqa: E731
        tzinfo=timezone.utc)
    return Inserted(int(count), parse(first), parse(last))


FOLDING = "folding"  # a temporary table: the deltas one fold took


def _folding_table(*, whole: bool = False):
    """The temporary table as a SQLAlchemy construct: the fine-row columns aggregations
    read, or (`whole`) every column, for writing into it."""
    from sqlalchemy import BigInteger, Integer, SmallInteger, String, column, table

    from services.store.schema import UTCDateTime

    ids = (column("id", BigInteger), column("ingested_at", UTCDateTime)) if whole else ()
    return table(FOLDING, *ids, column("bucket", UTCDateTime), column("channel", String),
                 column("template_id", Integer), column("status", String), column("latency_bucket", SmallInteger),
                 column("event_count", BigInteger), column("processing_sum", BigInteger),
                 column("processing_min", Integer), column("processing_max", Integer))


def _empty_folding(conn: Connection) -> None:
    """Create the temporary table if this session has none, and empty it."""
    if is_postgres(conn):
        conn.execute(text(f"CREATE TEMP TABLE IF NOT EXISTS {FOLDING} (LIKE rollup_deltas) ON COMMIT DELETE ROWS"))
        conn.execute(text(f"TRUNCATE {FOLDING}"))
    else:
        conn.execute(text(f"CREATE TEMP TABLE IF NOT EXISTS {FOLDING} AS SELECT * FROM rollup_deltas WHERE 0"))
        conn.execute(text(f"DELETE FROM {FOLDING}"))


def consume_deltas(conn: Connection, limit: int):
    """Move the pending deltas of the hours holding the `limit` oldest ones into a
    temporary table and delete them: exactly the rows moved are deleted, and an hour is
    folded whole, so a later chunk rarely finds rows to merge with. Returns (rows, events,
    the table to read)."""
    from sqlalchemy import bindparam, select

    from services.query.timerange import contiguous_hours
    from services.store.schema import UTCDateTime, rollup_deltas

    d = rollup_deltas.c
    oldest = select(d.bucket).order_by(d.id).limit(limit).subquery()
    hours = conn.execute(select(time_bucket(conn, "hour", oldest.c.bucket)).distinct()).scalars().all()
    if not hours:
        return 0, 0, _folding_table()
    ranges = contiguous_hours(hours)
    where = " OR ".join(f"(bucket >= :a{k} AND bucket < :b{k})" for k in range(len(ranges)))
    params = [bindparam(f"{side}{k}", value, type_=UTCDateTime)
              for k, (a, b) in enumerate(ranges) for side, value in (("a", a), ("b", b))]
    columns = ", ".join(DELTA_COLUMNS)
    _empty_folding(conn)
    if is_postgres(conn):
        conn.execute(text(f"""
            WITH consumed AS (DELETE FROM rollup_deltas WHERE {where} RETURNING id, {columns})
            INSERT INTO {FOLDING} (id, {columns}) SELECT id, {columns} FROM consumed""").bindparams(*params))
    else:
        # SQLite: the caller's transaction holds the write lock (write_intent), so nothing
        # commits between copying these rows and deleting them
        conn.execute(text(f"INSERT INTO {FOLDING} SELECT * FROM rollup_deltas WHERE {where}").bindparams(*params))
        conn.execute(text(f"DELETE FROM rollup_deltas WHERE {where}").bindparams(*params))
    rows, events = conn.execute(text(f"SELECT count(*), coalesce(sum(event_count), 0) FROM {FOLDING}")).one()
    return int(rows), int(events), _folding_table()


def stage_events(conn: Connection, start: datetime, end: datetime, granularity: str):
    """Sum the raw events of [start, end) per `granularity` bucket, channel, template,
    status and latency bucket into the temporary table — one pass over raw, which every
    rollup table of those buckets is then aggregated from. Returns the table to read."""
    from sqlalchemy import BigInteger, func, insert, literal, select

    from services.store.schema import NO_TEMPLATE, UTCDateTime, notification_events

    e = notification_events.c
    keys = [time_bucket(conn, granularity, e.created_at), e.channel, func.coalesce(e.template_id, NO_TEMPLATE),
            e.status, e.latency_bucket]
    rows = select(literal(0, BigInteger), literal(start, UTCDateTime), *keys, func.count(),
                  func.coalesce(func.sum(e.processing_time_ms), 0), func.min(e.processing_time_ms),
                  func.max(e.processing_time_ms)
                  ).where(e.created_at >= start, e.created_at < end).group_by(*keys)
    _empty_folding(conn)
    whole = _folding_table(whole=True)
    conn.execute(insert(whole).from_select([c.name for c in whole.columns], rows))
    return _folding_table()


def histogram_aggregate(conn: Connection, index, count) -> list:
    """Aggregate expressions gathering each group's (latency bucket, count) pairs."""
    from sqlalchemy import String, cast, func
    from sqlalchemy.dialects.postgresql import aggregate_order_by

    if is_postgres(conn):
        present = index.is_not(None)
        return [func.array_agg(aggregate_order_by(index, index)).filter(present),
                func.array_agg(aggregate_order_by(count, index)).filter(present)]
    return [func.group_concat(cast(index, String) + ":" + cast(count, String))]  # NULL index: skipped


def histogram_bytes(index, count):
    """Postgres: a group's encoded histogram (services.store.latency: count, then big-endian int16
    indexes and int64 counts, ascending), built in SQL; NULL for a group without one."""
    from sqlalchemy import BigInteger, Integer, LargeBinary, SmallInteger, case, cast, func, literal_column
    from sqlalchemy.dialects.postgresql import aggregate_order_by

    empty = literal_column("''::bytea")
    present = index.is_not(None)
    indexes = func.string_agg(func.int2send(cast(index, SmallInteger)), aggregate_order_by(empty, index))
    counts = func.string_agg(func.int8send(cast(count, BigInteger)), aggregate_order_by(empty, index))
    body = (func.int4send(cast(func.count(index), Integer))
            .op("||")(indexes.filter(present)).op("||")(counts.filter(present)))
    return cast(case((func.count(index) > 0, body)), LargeBinary)


def roomy_sorts(conn: Connection) -> None:
    """Postgres: let this transaction's grouping sort in memory (the default 4 MB spills)."""
    if is_postgres(conn):
        conn.execute(text("SET LOCAL work_mem = '64MB'"))


def histogram_lists(conn: Connection, values: Sequence) -> tuple[list[int], list[int]]:
    """(indexes ascending, counts) from what `histogram_aggregate` returned."""
    if is_postgres(conn):
        indexes, counts = values
        return (list(indexes), [int(c) for c in counts]) if indexes else ([], [])
    text_value = values[0]
    if not text_value:
        return [], []
    pairs = sorted((int(i), int(c)) for i, c in (p.split(":") for p in text_value.split(",")))
    return [i for i, _ in pairs], [c for _, c in pairs]


def bulk_insert_rows(conn: Connection, table, rows: Sequence[tuple]) -> None:
    """Insert many rollup rows given as tuples in the table's column order: COPY on
    Postgres, executemany elsewhere."""
    if not rows:
        return
    if is_postgres(conn):
        columns = [c.name for c in table.columns]
        with driver_errors(conn), conn.connection.dbapi_connection.cursor() as cursor:
            with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    from sqlalchemy import insert

    names = [c.name for c in table.columns]
    for i in range(0, len(rows), 5000):
        conn.execute(insert(table), [dict(zip(names, row)) for row in rows[i:i + 5000]])


# ---------------------------------------------------------------- partitions (Postgres)

def partition_name(day: date) -> str:
    return f"notification_events_p{day:%Y%m%d}"


def existing_partition_days(conn: Connection) -> set[date]:
    names = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'notification_events'::regclass")).scalars()
    return {datetime.strptime(n[-8:], "%Y%m%d").date() for n in names}


def ensure_partitions(conn: Connection, days: Iterable[date], *, lookup_indexes: bool = True) -> list[date]:
    """Create the daily partitions `days` need (late or historic data); returns those created.
    Without `lookup_indexes` (a backfill) they get them later (services.rollup.fold.index_rebuilt_days)."""
    if not is_postgres(conn):
        return []
    wanted = set(days) - existing_partition_days(conn)
    if not wanted:
        return []
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PARTITION_LOCK})
    # the DDL's exclusive lock waits at most DDL_LOCK_TIMEOUT (then this transaction fails: a
    # batch answers 503 "busy, retry", the daily job tries again); the caller's own lock
    # timeout holds again for the rest of its transaction
    before = conn.execute(text("SELECT current_setting('lock_timeout')")).scalar()
    without_waiting_long(conn)
    for day in sorted(wanted):
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        conn.execute(text(
            f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF notification_events "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{(start + timedelta(days=1)).isoformat()}')"))
        if lookup_indexes:
            index_partition(conn, day)
    conn.execute(text("SELECT set_config('lock_timeout', :v, true)"), {"v": before})
    return sorted(wanted)


# The raw events' lookup indexes (investigation by user and by notification, drill-down to the
# events of a channel, status and template). On Postgres each daily partition has its own, not
# one on the parent: a partition made for live data gets them at once, one a backfill makes
# gets them in one sorted build per index once its day is written and rolled up — a random
# B-tree insert per row for each of three indexes is most of what a bulk write costs.
# (SQLite has them on its one table: migrations 0001 and 0006.)
LOOKUP_INDEXES = (("user_time", "user_id, created_at"),
                  ("notification", "notification_id"),
                  ("dims_time", "channel, status, template_id, created_at"))


def lookup_index_names(day: date) -> dict[str, str]:
    """The day's partition's lookup indexes: {index name: its columns}."""
    table = partition_name(day)
    return {f"{table}_{suffix}": columns for suffix, columns in LOOKUP_INDEXES}


def index_partition(conn: Connection, day: date) -> None:
    """Build the partition's missing lookup indexes (Postgres)."""
    for name, columns in lookup_index_names(day).items():
        conn.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON {partition_name(day)} ({columns})"))


def drop_lookup_indexes(conn: Connection, day: date) -> None:
    """Drop the partition's lookup indexes (Postgres; the benchmark's and migration 0007's downgrade)."""
    for name in lookup_index_names(day):
        conn.execute(text(f"DROP INDEX IF EXISTS {name}"))


def unindexed_partition_days(conn: Connection) -> list[date]:
    """Days whose partition lacks a lookup index, oldest first (Postgres; [] elsewhere)."""
    if not is_postgres(conn):
        return []
    indexes = set(conn.execute(text(
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename LIKE 'notification_events_p%'")).scalars())
    return sorted(day for day in existing_partition_days(conn) if not indexes.issuperset(lookup_index_names(day)))


def ensure_partitions_ahead(conn: Connection, today: date | None = None) -> list[date]:
    today = today or datetime.now(timezone.utc).date()
    return ensure_partitions(conn, {today + timedelta(days=d) for d in range(-1, PARTITION_DAYS_AHEAD + 1)})


# Partition DDL (DROP, CREATE … PARTITION OF) needs an exclusive lock on the events table, and
# while it waits for a long read to finish, every insert queues behind it: it gives up instead.
DDL_LOCK_TIMEOUT = "1s"


def is_lock_timeout(exc: BaseException) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "55P03"  # lock_not_available


def without_waiting_long(conn: Connection) -> None:
    """Partition DDL in this transaction waits at most DDL_LOCK_TIMEOUT for its lock (Postgres)."""
    if is_postgres(conn):
        conn.execute(text(f"SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'"))


def drop_raw_before(conn: Connection, cutoff: date) -> int:
    """Raw retention: whole days before `cutoff` go (a partition drop on Postgres, which gives
    up after DDL_LOCK_TIMEOUT rather than hold ingest behind a long read: see apply_retention)."""
    if is_postgres(conn):
        old = sorted(d for d in existing_partition_days(conn) if d < cutoff)
        without_waiting_long(conn)
        for day in old:
            conn.execute(text(f"DROP TABLE IF EXISTS {partition_name(day)}"))
        return len(old)
    start = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=timezone.utc)
    result = conn.execute(text("DELETE FROM notification_events WHERE created_at < :cutoff"),
                          {"cutoff": sqlite_time(start)})
    return result.rowcount


# ---------------------------------------------------------------- time buckets

# the format SQLAlchemy stores datetimes in, so computed buckets equal stored ones
_SQLITE_BUCKET_FORMATS = {"minute": SQLITE_MINUTE, "hour": "%Y-%m-%d %H:00:00.000000",
                          "day": "%Y-%m-%d 00:00:00.000000"}


def time_bucket(conn: Connection, granularity: str, column):
    """The UTC start of the minute/hour/day holding `column`, as an aware datetime."""
    from sqlalchemy import func, literal, type_coerce

    from services.store.schema import UTCDateTime

    if granularity not in _SQLITE_BUCKET_FORMATS:
        raise ValueError(f"unknown granularity {granularity!r}")
    if is_postgres(conn):
        expr = func.date_trunc(literal(granularity), column, literal("UTC"))
    else:
        expr = func.strftime(literal(_SQLITE_BUCKET_FORMATS[granularity]), column)
    return type_coerce(expr, UTCDateTime)


# ---------------------------------------------------------------- locks

class LeaderLock:
    """A lock held for as long as this process keeps it, released if the process dies:
    a Postgres session advisory lock on a dedicated connection, or an flock on SQLite."""

    def __init__(self, engine, name: str):
        self.engine, self.name = engine, name
        self._conn = None
        self._file = None

    def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = conn.execute(text("SELECT pg_try_advisory_lock(hashtext(current_schema() || ':' || :n))"),
                               {"n": self.name}).scalar()
            if got:
                self._conn = conn
            else:
                conn.close()
            return bool(got)
        import fcntl

        handle = open(self._lock_path(), "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def _lock_path(self) -> str:
        database = self.engine.url.database or ""
        if not database or database == ":memory:":
            import tempfile
            return f"{tempfile.gettempdir()}/analytics-memory.{self.name}.lock"
        return f"{database}.{self.name}.lock"

    @property
    def held(self) -> bool:
        return self._conn is not None or self._file is not None

    def still_held(self) -> bool:
        """Whether the lock is still ours. On Postgres a session lock lives exactly as long as
        its session: a connection that broke (a network cut, a terminated backend, an idle
        timeout) has lost it, and another process may hold it already."""
        if self._file is not None:
            return True
        if self._conn is None:
            return False
        try:
            return bool(self._conn.execute(text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                "AND granted)")).scalar())
        except Exception:
            try:
                self._conn.close()
            finally:
                self._conn = None
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(hashtext(current_schema() || ':' || :n))"),
                                   {"n": self.name})
            except Exception:
                pass  # a lost connection has released the lock already
            finally:
                self._conn.close()
                self._conn = None
        if self._file is not None:
            import fcntl

            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


# ---------------------------------------------------------------- migrations

def upgrade_database(engine) -> None:
    """Apply every migration not yet applied (idempotent), then create the raw partitions
    for the days ahead on Postgres."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    with engine.begin() as conn:
        ensure_partitions_ahead(conn)
