"""A realistic, deterministic demo data set: lifecycle-consistent notifications with daily
and weekly seasonality, a channel mix, templates that differ, and injected incidents.

Everything is generated with numpy in bulk and written through the ingest storage path,
so a million events load in seconds. Same seed and end hour, same data.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
from sqlalchemy import Connection, delete, insert

from services.store import latency
from services.store.ingest import store_rows
from services.store.schema import STATUSES, templates

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Template:
    template_id: int
    name: str
    channel: str
    weight: float      # share of its channel's volume
    open_rate: float   # of delivered
    click_rate: float  # of opened


TEMPLATES: tuple[Template, ...] = (
    Template(1, "Password reset", "email", 0.15, 0.62, 0.45),
    Template(2, "Order confirmation", "email", 0.30, 0.48, 0.12),
    Template(3, "Weekly digest", "email", 0.25, 0.22, 0.08),
    Template(4, "Abandoned cart", "email", 0.15, 0.35, 0.18),
    Template(5, "Welcome", "email", 0.15, 0.55, 0.25),
    Template(6, "Login code", "sms", 0.50, 0.0, 0.0),
    Template(7, "Delivery update", "sms", 0.30, 0.0, 0.0),
    Template(8, "Appointment reminder", "sms", 0.20, 0.0, 0.0),
    Template(9, "Flash sale", "push", 0.30, 0.08, 0.30),
    Template(10, "New message", "push", 0.35, 0.25, 0.40),
    Template(11, "Price drop", "push", 0.20, 0.12, 0.20),
    Template(12, "Daily streak", "push", 0.15, 0.18, 0.10),
)
CHANNEL_SHARE = {"email": 0.55, "push": 0.30, "sms": 0.15}
# (delivered, failed, bounced) of sent
OUTCOMES = {"email": (0.955, 0.010, 0.035), "sms": (0.920, 0.070, 0.010), "push": (0.970, 0.030, 0.0)}
# lognormal processing time: median ms, sigma
PROCESSING = {"email": (420.0, 0.5), "sms": (950.0, 0.45), "push": (140.0, 0.6)}
# why failed and bounced notifications failed: (code, share) per channel and outcome
FAILURE_CODES = {
    ("email", "failed"): (("smtp_timeout", 0.5), ("throttled", 0.3), ("provider_error", 0.2)),
    ("email", "bounced"): (("hard_bounce", 0.55), ("mailbox_full", 0.25), ("spam_block", 0.2)),
    ("sms", "failed"): (("invalid_number", 0.45), ("carrier_rejected", 0.3), ("throttled", 0.25)),
    ("sms", "bounced"): (("number_unreachable", 1.0),),
    ("push", "failed"): (("token_expired", 0.6), ("device_unregistered", 0.25), ("throttled", 0.15)),
    ("push", "bounced"): (("token_expired", 1.0),),
}
# what an incident's extra failures are: the code most of them carry during it
INCIDENT_CODES = {"sms_delivery_drop": ("carrier_outage", 0.85), "email_bounce_spike": ("hard_bounce", 0.9)}
EPISODE_CODE = ("carrier_rejected", 0.7)
PROVIDERS = {"email": (("sendgrid", 0.7), ("ses", 0.3)), "sms": (("twilio", 0.6), ("vonage", 0.4)),
             "push": (("fcm", 0.65), ("apns", 0.35))}
CODES = tuple(sorted({c for pairs in FAILURE_CODES.values() for c, _ in pairs}
                     | {c for c, _ in INCIDENT_CODES.values()} | {EPISODE_CODE[0]}))
PROVIDER_NAMES = tuple(sorted({p for pairs in PROVIDERS.values() for p, _ in pairs}))
OPEN_DELAY_S = {"email": 1200.0, "sms": 600.0, "push": 240.0}
CLICK_DELAY_S = 90.0


@dataclass(frozen=True)
class Incident:
    kind: str
    description: str
    start: str
    end: str
    channel: str
    template_id: int | None
    metric: str
    normal: float
    during: float
    lag_hours: int | None = None
    episodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoResult:
    events: int
    notifications: int
    start: datetime
    end: datetime
    incidents: tuple[Incident, ...]


def hourly_profile() -> np.ndarray:
    """Relative volume by hour of day (mean 1): peaks around 08:00 and 18:00, quiet nights."""
    h = np.arange(24)
    shape = (0.25 + 1.1 * np.exp(-((h - 8) ** 2) / (2 * 1.6 ** 2))
             + 0.95 * np.exp(-((h - 18) ** 2) / (2 * 2.0 ** 2)) + 0.35 * np.exp(-((h - 13) ** 2) / 18))
    return shape / shape.mean()


WEEKDAY_FACTOR = np.array([1.05, 1.08, 1.06, 1.04, 1.0, 0.78, 0.72])  # Monday first


def plan_incidents(start: datetime, end: datetime) -> list[dict]:
    """Three incidents placed back from `end`, kept only when they fall inside the range."""
    day = end.replace(hour=0, minute=0, second=0, microsecond=0)
    plans = [
        dict(kind="sms_delivery_drop", channel="sms", template_id=None, metric="delivery_rate",
             normal=92.0, during=45.0, start=day - timedelta(days=2) + timedelta(hours=14), hours=3,
             description="SMS delivery rate falls from ~92% to ~45% for three hours (carrier outage)"),
        dict(kind="email_bounce_spike", channel="email", template_id=3, metric="bounce_rate",
             normal=3.5, during=30.0, start=day - timedelta(days=5) + timedelta(hours=10), hours=2,
             description="Bounce rate of the 'Weekly digest' email jumps to ~30% for two hours (stale list)"),
        dict(kind="push_latency_spike", channel="push", template_id=None, metric="p95_processing_time",
             normal=380.0, during=3000.0, start=day - timedelta(days=1) + timedelta(hours=20), hours=1,
             description="Push processing time rises eightfold for one hour (provider slowdown)"),
    ]
    return [p for p in plans if p["start"] >= start and p["start"] + timedelta(hours=p["hours"]) <= end]


EPISODE_LAG_HOURS = 2
EPISODE_EVERY_HOURS = 20


def plan_episodes(rng, start: datetime, end: datetime, incidents: list[dict]) -> list[datetime]:
    """Hours of the related episodes: about one every EPISODE_EVERY_HOURS, away from the
    incidents so each stays recognisable."""
    hours = int((end - start).total_seconds() // 3600)
    busy = set()
    for inc in incidents:
        first = int((inc["start"] - start).total_seconds() // 3600)
        busy |= set(range(first - 4, first + inc["hours"] + 4))
    chosen = []
    for h in range(6, hours - EPISODE_LAG_HOURS - 1):
        if rng.random() < 1 / EPISODE_EVERY_HOURS and not ({h, h + EPISODE_LAG_HOURS} & busy):
            chosen.append(start + timedelta(hours=h))
    return chosen


def generate(days: int, per_hour: int, seed: int, end: datetime) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Column arrays of every event of `days` days up to the hour of `end` (and the incident
    plan). `per_hour` is the average number of notifications sent per hour; each becomes 2–4
    events."""
    end = end.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    return generate_span(start, days * 24, per_hour, seed, plan_incidents(start, end), episodes=True)


def generate_span(start: datetime, hours: int, per_hour: int, seed: int, incidents: list[dict],
                  episodes: bool = False, cut_at_end: bool = True) -> tuple[dict[str, np.ndarray], list[dict]]:
    """The notifications sent in `hours` hours from `start` (an hour), with the `incidents`
    given (and, with `episodes`, the related SMS/email episodes planned among them); their
    events up to the end of the span, or all of them (`cut_at_end=False`)."""
    rng = np.random.default_rng(seed)
    end = start + timedelta(hours=hours)
    hour_starts = np.arange(hours) * 3600 + int((start - EPOCH).total_seconds())
    hour_of_day = (hour_starts // 3600) % 24
    weekday = ((hour_starts // 86400) + 3) % 7  # 1970-01-01 was a Thursday
    rate = per_hour * hourly_profile()[hour_of_day] * WEEKDAY_FACTOR[weekday] / WEEKDAY_FACTOR.mean()
    counts = rng.poisson(rate)
    n = int(counts.sum())

    sent_us = (np.repeat(hour_starts, counts) * 1_000_000 + rng.integers(0, 3_600_000_000, n)).astype(np.int64)
    channels = list(CHANNEL_SHARE)
    weights = np.array([CHANNEL_SHARE[t.channel] * t.weight for t in TEMPLATES])
    tpl = rng.choice(len(TEMPLATES), size=n, p=weights / weights.sum())
    tpl_channel = np.array([channels.index(t.channel) for t in TEMPLATES])[tpl]

    # outcome: delivered / failed / bounced, per channel, with incidents
    probs = np.array([OUTCOMES[c] for c in channels])[tpl_channel]  # n x 3
    median = np.array([PROCESSING[c][0] for c in channels])[tpl_channel]
    sigma = np.array([PROCESSING[c][1] for c in channels])[tpl_channel]
    incidents = [dict(i) for i in incidents]
    for inc in incidents:
        lo = int((inc["start"] - EPOCH).total_seconds()) * 1_000_000
        hi = lo + inc["hours"] * 3_600_000_000
        mask = (sent_us >= lo) & (sent_us < hi) & (tpl_channel == channels.index(inc["channel"]))
        if inc["template_id"] is not None:
            mask &= np.array([t.template_id for t in TEMPLATES])[tpl] == inc["template_id"]
        if inc["kind"] == "sms_delivery_drop":
            probs[mask] = (0.45, 0.53, 0.02)
        elif inc["kind"] == "email_bounce_spike":
            probs[mask] = (0.69, 0.01, 0.30)
        elif inc["kind"] == "push_latency_spike":
            median = np.where(mask, median * 8, median)
    episodes = plan_episodes(rng, start, end, incidents) if episodes else []
    for hour in episodes:  # an SMS carrier hiccup, then email bounces two hours later
        lo = int((hour - EPOCH).total_seconds()) * 1_000_000
        sms_mask = (sent_us >= lo) & (sent_us < lo + 3_600_000_000) & (tpl_channel == channels.index("sms"))
        probs[sms_mask] = (0.72, 0.26, 0.02)
        later = lo + EPISODE_LAG_HOURS * 3_600_000_000
        email_mask = (sent_us >= later) & (sent_us < later + 3_600_000_000) & (tpl_channel == channels.index("email"))
        probs[email_mask] = (0.875, 0.01, 0.115)
    if episodes:
        incidents.append(dict(kind="sms_dips_lead_email_bounces", channel="sms", template_id=None,
                              metric="delivery_rate", normal=92.0, during=72.0, start=episodes[0], hours=1,
                              lag_hours=EPISODE_LAG_HOURS, episodes=[e.isoformat() for e in episodes],
                              description=f"{len(episodes)} one-hour SMS delivery dips (~92% → ~72%), each "
                                          f"followed {EPISODE_LAG_HOURS} hours later by an email bounce rise "
                                          "(~3.5% → ~11%)"))
    u = rng.random(n)
    outcome = np.where(u < probs[:, 0], 1, np.where(u < probs[:, 0] + probs[:, 1], 2, 3))  # STATUSES index
    codes, providers = failure_reasons(np.random.default_rng(seed + 7919), outcome, tpl_channel, sent_us,
                                       incidents, episodes)
    processing = np.maximum(1, np.round(median * np.exp(sigma * rng.standard_normal(n)))).astype(np.int64)
    processing = np.where(outcome == 2, processing * 3 // 2, processing)
    outcome_us = sent_us + processing * 1000

    delivered = outcome == 1
    open_p = np.array([t.open_rate for t in TEMPLATES])[tpl]
    opened = delivered & (rng.random(n) < open_p)
    open_delay = np.array([OPEN_DELAY_S[c] for c in channels])[tpl_channel]
    open_us = outcome_us + (rng.exponential(1.0, n) * open_delay * 1_000_000).astype(np.int64)
    click_p = np.array([t.click_rate for t in TEMPLATES])[tpl]
    clicked = opened & (rng.random(n) < click_p)
    click_us = open_us + (rng.exponential(CLICK_DELAY_S, n) * 1_000_000).astype(np.int64)
    users = rng.integers(1, 50_001, n)

    idx = np.arange(n)
    parts = [
        (idx, sent_us, np.zeros(n, dtype=np.int64), np.full(n, -1)),
        (idx, outcome_us, outcome, processing),
        (idx[opened], open_us[opened], np.full(opened.sum(), 4), np.full(opened.sum(), -1)),
        (idx[clicked], click_us[clicked], np.full(clicked.sum(), 5), np.full(clicked.sum(), -1)),
    ]
    note = np.concatenate([p[0] for p in parts])
    time_us = np.concatenate([p[1] for p in parts])
    status = np.concatenate([p[2] for p in parts])
    ptime = np.concatenate([p[3] for p in parts])
    # nothing after the span (the caller's "now"), unless the caller picks the events it wants
    keep = time_us < int((end - EPOCH).total_seconds()) * 1_000_000 if cut_at_end else np.ones(len(time_us), bool)
    order = np.argsort(time_us[keep], kind="stable")
    columns = {"notification": note[keep][order], "time_us": time_us[keep][order],
               "status": status[keep][order], "processing": ptime[keep][order],
               "template": tpl[note[keep][order]], "channel": tpl_channel[note[keep][order]],
               "user": users[note[keep][order]], "provider": providers[note[keep][order]],
               "code": np.where(np.isin(status[keep][order], (2, 3)), codes[note[keep][order]], -1)}
    return columns, incidents


def _pick(rng, pairs, size: int, names: tuple[str, ...]) -> np.ndarray:
    shares = np.array([share for _, share in pairs])
    return np.array([names.index(c) for c, _ in pairs])[rng.choice(len(pairs), size=size, p=shares / shares.sum())]


def failure_reasons(rng, outcome: np.ndarray, tpl_channel: np.ndarray, sent_us: np.ndarray, incidents: list[dict],
                    episodes: list[datetime]) -> tuple[np.ndarray, np.ndarray]:
    """Per notification: the index in CODES of why it failed (-1 when it did not) and the
    index in PROVIDER_NAMES of who carried it. Failures during an incident mostly carry the
    incident's own code. A separate generator, so the events themselves do not change."""
    channels = list(CHANNEL_SHARE)
    n = len(outcome)
    codes = np.full(n, -1)
    providers = np.zeros(n, dtype=np.int64)
    for c, channel in enumerate(channels):
        on = tpl_channel == c
        providers[on] = _pick(rng, PROVIDERS[channel], int(on.sum()), PROVIDER_NAMES)
        for status_index, status in ((2, "failed"), (3, "bounced")):
            mask = on & (outcome == status_index)
            codes[mask] = _pick(rng, FAILURE_CODES[(channel, status)], int(mask.sum()), CODES)
    spans = [(inc["start"], inc["hours"], inc["channel"], INCIDENT_CODES[inc["kind"]])
             for inc in incidents if inc["kind"] in INCIDENT_CODES]
    spans += [(hour, 1, "sms", EPISODE_CODE) for hour in episodes]
    for start, hours, channel, (code, share) in spans:
        lo = int((start - EPOCH).total_seconds()) * 1_000_000
        failed = np.flatnonzero((sent_us >= lo) & (sent_us < lo + hours * 3_600_000_000)
                                & (tpl_channel == channels.index(channel)) & (codes >= 0))
        codes[failed[rng.random(len(failed)) < share]] = CODES.index(code)
    return codes, providers


def to_rows(columns: dict[str, np.ndarray], seed: int, now: datetime, lo: int, hi: int) -> list[tuple]:
    """Rows lo..hi in EVENT_COLUMNS order."""
    channels = list(CHANNEL_SHARE)
    utc = timezone.utc
    times = [t.replace(tzinfo=utc) for t in columns["time_us"][lo:hi].astype("datetime64[us]").tolist()]
    notes = columns["notification"][lo:hi].tolist()
    statuses = columns["status"][lo:hi].tolist()
    processing = columns["processing"][lo:hi]
    buckets = latency.bucket_indexes(np.maximum(processing, 0)).tolist()
    processing = processing.tolist()
    tpl_ids = [TEMPLATES[i].template_id for i in columns["template"][lo:hi].tolist()]
    chans = [channels[i] for i in columns["channel"][lo:hi].tolist()]
    users = columns["user"][lo:hi].tolist()
    codes = [CODES[i] if i >= 0 else None for i in columns["code"][lo:hi].tolist()]
    providers = [PROVIDER_NAMES[i] for i in columns["provider"][lo:hi].tolist()]
    rows = []
    for k in range(hi - lo):
        nid = f"demo{seed}-{notes[k]}"
        status = STATUSES[statuses[k]]
        has_time = processing[k] >= 0
        rows.append((times[k], f"{nid}:{status}", nid, now, chans[k], tpl_ids[k], f"u{users[k]}", status,
                     processing[k] if has_time else None, buckets[k] if has_time else None, None, codes[k],
                     providers[k]))
    return rows


def seed_demo(conn_factory: Callable, days: int = 30, per_hour: int = 2000, seed: int = 42,
              end: datetime | None = None, batch_size: int = 100_000,
              progress: Callable[[int], None] | None = None) -> DemoResult:
    """Generate and load the demo set, one transaction per batch (`conn_factory()` returns
    a context manager yielding a Connection in a transaction, e.g. `engine.begin`)."""
    end = (end or datetime.now(timezone.utc)).replace(minute=0, second=0, microsecond=0)
    columns, plans = generate(days, per_hour, seed, end)
    total = len(columns["time_us"])
    now = datetime.now(timezone.utc)
    with conn_factory() as conn:
        write_templates(conn)
    for lo in range(0, total, batch_size):
        hi = min(total, lo + batch_size)
        rows = to_rows(columns, seed, now, lo, hi)
        with conn_factory() as conn:
            store_rows(conn, rows, now=now)
        if progress:
            progress(hi - lo)
    incidents = tuple(Incident(kind=p["kind"], description=p["description"], start=p["start"].isoformat(),
                               end=(p["start"] + timedelta(hours=p["hours"])).isoformat(),
                               channel=p["channel"], template_id=p["template_id"], metric=p["metric"],
                               normal=p["normal"], during=p["during"], lag_hours=p.get("lag_hours"),
                               episodes=tuple(p.get("episodes", ()))) for p in plans)
    return DemoResult(events=total, notifications=int(columns["notification"].max() + 1) if total else 0,
                      start=end - timedelta(days=days), end=end, incidents=incidents)


def write_templates(conn: Connection) -> None:
    ids = [t.template_id for t in TEMPLATES]
    conn.execute(delete(templates).where(templates.c.template_id.in_(ids)))
    conn.execute(insert(templates), [{"template_id": t.template_id, "name": t.name, "channel": t.channel}
                                     for t in TEMPLATES])


def incidents_as_dicts(result: DemoResult) -> list[dict]:
    return [asdict(i) for i in result.incidents]


# ---------------------------------------------------------------- a live feed

FEED_LOOKBACK = timedelta(hours=3)  # opens and clicks come up to hours after their send
INCIDENT_EVERY_HOURS = 12           # about one hour in twelve holds an SMS carrier outage
FEED_BATCH = 20_000


def hour_seed(seed: int, hour: datetime) -> int:
    return seed * 1_000_003 + int((hour - EPOCH).total_seconds() // 3600)


def live_incidents(hour: datetime, seed: int) -> list[dict]:
    """The incidents of one hour of the live feed, decided by the hour itself."""
    if np.random.default_rng(hour_seed(seed, hour) ^ 0x5EED).random() >= 1 / INCIDENT_EVERY_HOURS:
        return []
    return [dict(kind="sms_delivery_drop", channel="sms", template_id=None, metric="delivery_rate", normal=92.0,
                 during=45.0, start=hour, hours=1, description="SMS delivery rate falls to ~45% for an hour "
                                                                 "(carrier outage)")]


def events_between(since: datetime, until: datetime, per_hour: int, seed: int, sent_from: datetime,
                   now: datetime) -> list[tuple]:
    """Rows of the live feed's events with `since` <= created_at < `until`, of notifications
    sent from `sent_from` on. Each hour's notifications come from that hour's own seed, so
    any window gives the same events (and ingest de-duplicates a window fed twice)."""
    rows: list[tuple] = []
    hour = max(since - FEED_LOOKBACK, sent_from).replace(minute=0, second=0, microsecond=0)
    lo, hi = (int((t - EPOCH).total_seconds() * 1_000_000) for t in (since, until))
    first_send = int((sent_from - EPOCH).total_seconds() * 1_000_000)
    while hour < until:
        s = hour_seed(seed, hour)
        columns, _ = generate_span(hour, 1, per_hour, s, live_incidents(hour, seed), cut_at_end=False)
        sent = columns["status"] == 0  # every notification has its send: when it was sent
        sent_at = np.zeros(int(columns["notification"].max()) + 1 if sent.any() else 0, dtype=np.int64)
        sent_at[columns["notification"][sent]] = columns["time_us"][sent]
        keep = ((columns["time_us"] >= lo) & (columns["time_us"] < hi) & (sent_at[columns["notification"]] >= first_send)
                if sent.any() else np.zeros(0, dtype=bool))
        if keep.any():
            picked = {k: v[keep] for k, v in columns.items()}
            rows += to_rows(picked, s, now, 0, int(keep.sum()))
        hour += timedelta(hours=1)
    rows.sort(key=lambda r: (r[0], r[1]))
    return rows


@dataclass(frozen=True)
class FeedReport:
    since: datetime
    until: datetime
    written: int      # events stored (duplicates of a window fed before are not)
    topped_up: bool   # the window was longer than a tick: history filled in


def feed(conn_factory: Callable, since: datetime, now: datetime, per_hour: int, seed: int,
         sent_from: datetime) -> FeedReport:
    """Store the live feed's events of [since, now) through the ingest storage path, in
    batches (a long window — history fallen behind — is written as a backfill)."""
    rows = events_between(since, now, per_hour, seed, sent_from, now)
    written = 0
    for i in range(0, len(rows), FEED_BATCH):
        with conn_factory() as conn:
            written += store_rows(conn, rows[i:i + FEED_BATCH], now=now)
    return FeedReport(since, now, written, topped_up=now - since > timedelta(minutes=5))
