"""Every difference between Postgres and SQLite lives here: bulk writes (COPY vs
executemany), partitions, time bucketing and locks. Nothing a user types reaches the SQL
built here; identifiers come from our own constants."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from services.schema import EVENT_COLUMNS

SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
PARTITION_DAYS_AHEAD = 7
_PARTITION_LOCK = 0x6E615F70  # advisory lock id serialising partition creation ("na_p")


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


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


def insert_events(conn: Connection, rows: Sequence[tuple]) -> int:
    """Insert rows (in EVENT_COLUMNS order, aware UTC datetimes, metadata as JSON text),
    skipping any whose (created_at, event_id) exists. Returns how many were inserted."""
    if not rows:
        return 0
    with driver_errors(conn):
        if is_postgres(conn):
            return _copy_events(conn, rows)
        return _executemany_events(conn, rows)


def _copy_events(conn: Connection, rows: Sequence[tuple]) -> int:
    ensure_partitions(conn, {r[0].astimezone(timezone.utc).date() for r in rows})
    columns = ", ".join(EVENT_COLUMNS)
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS ingest_staging "
                       "(LIKE notification_events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
        cursor.execute("TRUNCATE ingest_staging")
        with cursor.copy(f"COPY ingest_staging ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"INSERT INTO notification_events ({columns}) "
                       f"SELECT {columns} FROM ingest_staging ON CONFLICT DO NOTHING")
        return cursor.rowcount


def _executemany_events(conn: Connection, rows: Sequence[tuple]) -> int:
    created, ingested = EVENT_COLUMNS.index("created_at"), EVENT_COLUMNS.index("ingested_at")

    def to_sqlite(row: tuple) -> tuple:
        row = list(row)
        row[created], row[ingested] = sqlite_time(row[created]), sqlite_time(row[ingested])
        return tuple(row)

    placeholders = ", ".join("?" for _ in EVENT_COLUMNS)
    raw = conn.connection.dbapi_connection
    cursor = raw.cursor()
    before = raw.total_changes
    cursor.executemany(f"INSERT OR IGNORE INTO notification_events ({', '.join(EVENT_COLUMNS)}) "
                       f"VALUES ({placeholders})", map(to_sqlite, rows))
    cursor.close()
    return raw.total_changes - before


def bulk_insert(conn: Connection, table, rows: list[dict]) -> None:
    """Insert many rows of a rollup table: COPY on Postgres, executemany elsewhere."""
    if not rows:
        return
    if not is_postgres(conn):
        from sqlalchemy import insert

        for i in range(0, len(rows), 5000):
            conn.execute(insert(table), rows[i:i + 5000])
        return
    columns = [c.name for c in table.columns]
    with driver_errors(conn), conn.connection.dbapi_connection.cursor() as cursor:
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(tuple(row[c] for c in columns))


# ---------------------------------------------------------------- partitions (Postgres)

def partition_name(day: date) -> str:
    return f"notification_events_p{day:%Y%m%d}"


def existing_partition_days(conn: Connection) -> set[date]:
    names = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'notification_events'::regclass")).scalars()
    return {datetime.strptime(n[-8:], "%Y%m%d").date() for n in names}


def ensure_partitions(conn: Connection, days: Iterable[date]) -> list[date]:
    """Create the daily partitions `days` need (late or historic data); returns those created."""
    if not is_postgres(conn):
        return []
    wanted = set(days) - existing_partition_days(conn)
    if not wanted:
        return []
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PARTITION_LOCK})
    for day in sorted(wanted):
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        conn.execute(text(
            f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF notification_events "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{(start + timedelta(days=1)).isoformat()}')"))
    return sorted(wanted)


def ensure_partitions_ahead(conn: Connection, today: date | None = None) -> list[date]:
    today = today or datetime.now(timezone.utc).date()
    return ensure_partitions(conn, {today + timedelta(days=d) for d in range(-1, PARTITION_DAYS_AHEAD + 1)})


def drop_raw_before(conn: Connection, cutoff: date) -> int:
    """Raw retention: whole days before `cutoff` go (a partition drop on Postgres)."""
    if is_postgres(conn):
        old = sorted(d for d in existing_partition_days(conn) if d < cutoff)
        for day in old:
            conn.execute(text(f"DROP TABLE IF EXISTS {partition_name(day)}"))
        return len(old)
    start = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=timezone.utc)
    result = conn.execute(text("DELETE FROM notification_events WHERE created_at < :cutoff"),
                          {"cutoff": sqlite_time(start)})
    return result.rowcount


# ---------------------------------------------------------------- time buckets

_SQLITE_BUCKET_FORMATS = {"minute": "%Y-%m-%d %H:%M:00", "hour": "%Y-%m-%d %H:00:00",
                          "day": "%Y-%m-%d 00:00:00"}


def time_bucket(conn: Connection, granularity: str, column):
    """The UTC start of the minute/hour/day holding `column`, as an aware datetime."""
    from sqlalchemy import func, literal, type_coerce

    from services.schema import UTCDateTime

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
