"""The dashboard's speed as a user feels it, in headless Chromium: how long after navigation
each tab's first charts are drawn, how long a drill click takes to draw the next level, and
whether a tab switch waits on the callbacks of the tab being left. Run alone on the demo data
(`python -m bench.browser`: `make run`'s 30 days at 400 notifications an hour, in Postgres,
served by gunicorn with Redis) or as a phase of `python -m bench` on its dataset.

Times run from the navigation (a page load, a tab click, a bar click) to the moment every
element the tab shows first has drawn, polled every 20 ms. "Cold" is with the report and
chart cache (Redis) flushed just before; "warm" is the same navigation again. The first
charts of a page load are the median of five fresh browsers (a single load varies by ±15 %).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timezone

import redis
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from bench.harness import REDIS, RESULTS, Server, analyze, fresh_schema, log, machine, write_result

FIGURE_KEYS = ("dashboard_first_charts_s", "dashboard_cached_assets_s", "tab_first_charts_cold_max_s",
               "tab_first_charts_warm_max_s", "drill_click_p50_s", "drill_click_max_s", "tab_switch_alone_s",
               "tab_switch_while_busy_s", "drill_clicks_repeated")

# what each tab shows first: selectors that all match once it has drawn ("text:": has text)
READY = {
    "overview": ("#kpi-row .kpi-tile", "#timeseries .trace", "#channel-bar .trace", "#status-bar .trace",
                 "#heatmap .hm"),
    "trends": ("text:#trend-headline", "#trend-chart .trace", "#trend-hours .trace", "#trend-weekdays .trace"),
    "compare": ("text:#compare-summary", "#compare-chart .trace", "#compare-period .trace", "#compare-templates table"),
    "drilldown": ("#breadcrumb .breadcrumb-item",  # a level's chart, or the events grid's rows at the last
                  "#drill-chart-wrapper:not([style*='none']) #drill-chart .trace, "
                  "#events-wrapper:not([style*='none']) .ag-row"),
    "investigate": ("text:#investigate-body",),
    "metrics": ("text:#saved-metrics", "#formula-preview :is(.trace, .annotation)"),
    "correlations": ("#corr-matrix .hm", "#corr-overlay .trace", "text:#corr-sentence"),
    "alerts": ("text:#alert-rules",),
}
TABS = tuple(READY)
LABELS = {"overview": "Overview", "trends": "Trends", "compare": "Compare", "drilldown": "Drill-down",
          "investigate": "Investigate", "metrics": "Metrics", "correlations": "Correlations", "alerts": "Alerts"}
TIMEOUT = 60
CLICK_ATTEMPTS, RECLICK_AFTER = 3, 10.0  # a drill click that changed nothing in 10 s is made again


def missing(driver, tab: str) -> list[str]:
    """What `tab` does not show yet ("text:#id": that element has no text yet)."""
    return driver.execute_script(
        "return arguments[0].filter(s => { if (!s.startsWith('text:')) return !document.querySelector(s);"
        "const e = document.querySelector(s.slice(5)); return !(e && e.textContent.trim()); })", list(READY[tab]))


def drawn(driver, tab: str) -> bool:
    return not missing(driver, tab)


def wait_drawn(driver, tab: str, started: float, before=None, timeout: float | None = None) -> float:
    """Seconds from `started` until `tab` has drawn (and `before`, if given, holds)."""
    timeout = timeout or TIMEOUT
    while not ((before is None or before(driver)) and drawn(driver, tab)):
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"the {tab} tab did not draw within {timeout} s: no "
                               f"{', '.join(missing(driver, tab)) or 'change of level after the click'}")
        time.sleep(0.02)
    return time.perf_counter() - started


def click_tab(driver, tab: str) -> None:
    link = next(e for e in driver.find_elements(By.CSS_SELECTOR, ".nav-tabs .nav-link") if e.text == LABELS[tab])
    driver.execute_script("arguments[0].click()", link)


def showing(tab: str):
    return lambda d: d.execute_script(
        "const a = document.querySelector('.nav-tabs .nav-link.active'); return a && a.textContent") == LABELS[tab]


def flush() -> None:
    """No chart or report answer cached (Redis db of the benchmark)."""
    redis.Redis.from_url(REDIS).flushdb()


FRESH_BROWSERS = 5  # one fresh load varies by ±15 % here: the figure is the median of five


def page_loads(server: Server, driver_factory) -> dict:
    """The Overview from a page load: in fresh browsers (nothing cached, each its own), then
    reloaded twice in the last of them (its scripts cached)."""
    def load(driver) -> float:
        flush()
        started = time.perf_counter()
        driver.get(server.base + "/analytics/?tab=overview&range=7d")
        return wait_drawn(driver, "overview", started)

    fresh, reloads = [], []
    for n in range(FRESH_BROWSERS):
        driver = driver_factory()
        try:
            fresh.append(load(driver))
            if n == FRESH_BROWSERS - 1:
                reloads = [load(driver), load(driver)]
        finally:
            driver.quit()
    return {"first_s": statistics.median(fresh), "fresh_s": fresh, "cached_assets_s": statistics.median(reloads)}


def tab_clicks(driver, server: Server) -> dict:
    """Each tab reached by a click from the Overview: cold (cache flushed), then warm."""
    out: dict = {}
    for tab in TABS[1:]:
        for kind in ("cold", "warm"):
            driver.get(server.base + "/analytics/?tab=overview&range=7d")
            wait_drawn(driver, "overview", time.perf_counter())
            if kind == "cold":
                flush()
            started = time.perf_counter()
            click_tab(driver, tab)
            out.setdefault(tab, {})[f"{kind}_s"] = wait_drawn(driver, tab, started, showing(tab))
    return out


def bar_click(driver, graph: str, index: int) -> None:
    bars = driver.find_elements(By.CSS_SELECTOR, f"#{graph} .trace.bars .point path")
    bar = bars[index % len(bars)]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", bar)
    ActionChains(driver).move_to_element(bar).click().perform()  # Plotly's drag layer takes plain clicks


def drill_clicks(driver, server: Server, clicks: int = 3) -> list[dict]:
    """A bar of the Overview's channel chart, then a bar of each drill level: the time until
    the next level has drawn (its breadcrumb one crumb longer)."""
    timings = []
    for n in range(clicks):
        driver.get(server.base + "/analytics/?tab=overview&range=7d")
        wait_drawn(driver, "overview", time.perf_counter())
        started = time.perf_counter()
        bar_click(driver, "channel-bar", n)
        timings.append({"from": "overview", "s": wait_drawn(
            driver, "drilldown", started, lambda d: "drill=" in d.current_url and showing("drilldown")(d))})
        for level in (2, 3):  # status, then template
            crumbs = len(driver.find_elements(By.CSS_SELECTOR, "#breadcrumb .breadcrumb-item"))
            deeper = lambda d, c=crumbs: len(d.find_elements(By.CSS_SELECTOR, "#breadcrumb .breadcrumb-item")) > c  # noqa: E731
            for attempt in range(CLICK_ATTEMPTS):
                # a chart that redraws (a timed refresh) between finding the bar and the click
                # swallows the click, as it would a person's: they click again, and so does this
                started = time.perf_counter()
                bar_click(driver, "drill-chart", n)
                try:
                    seconds = wait_drawn(driver, "drilldown", started, deeper, timeout=RECLICK_AFTER)
                    break
                except RuntimeError:
                    if attempt == CLICK_ATTEMPTS - 1:
                        raise
            timings.append({"from": f"level {level - 1}", "s": seconds, "clicks": attempt + 1})
    return timings


def tab_switch(driver, server: Server) -> dict:
    """A click on the Overview with its answers not cached (30 days), once with nothing else
    in flight and once right after a click on Trends, whose report (not cached either) is
    still being computed for the tab just left."""
    out = {}
    for kind in ("alone", "while_busy"):
        first = "trends" if kind == "alone" else "overview"
        driver.get(server.base + f"/analytics/?tab={first}&range=30d")
        wait_drawn(driver, first, time.perf_counter())
        flush()
        if kind == "while_busy":
            click_tab(driver, "trends")
            time.sleep(0.15)  # its callbacks are on their way
        started = time.perf_counter()
        click_tab(driver, "overview")
        out[f"{kind}_s"] = wait_drawn(driver, "overview", started, showing("overview"))
    return out


def browser_phase(server: Server) -> tuple[dict, dict]:
    """Figures and details for the dashboard in headless Chromium."""
    from scripts.screenshots import browser

    details: dict = {"page_load": page_loads(server, lambda: browser(1440, 1000))}
    driver = browser(1440, 1000)
    try:
        details["tabs"] = tab_clicks(driver, server)
        details["drill_clicks"] = drill_clicks(driver, server)
        details["tab_switch"] = tab_switch(driver, server)
    finally:
        driver.quit()
    drills = [t["s"] for t in details["drill_clicks"]]
    figures = {
        "dashboard_first_charts_s": details["page_load"]["first_s"],
        "dashboard_cached_assets_s": details["page_load"]["cached_assets_s"],
        "tab_first_charts_cold_max_s": max(t["cold_s"] for t in details["tabs"].values()),
        "tab_first_charts_warm_max_s": max(t["warm_s"] for t in details["tabs"].values()),
        "drill_click_p50_s": statistics.median(drills), "drill_click_max_s": max(drills),
        "drill_clicks_repeated": sum(t.get("clicks", 1) - 1 for t in details["drill_clicks"]),
        "tab_switch_alone_s": details["tab_switch"]["alone_s"],
        "tab_switch_while_busy_s": details["tab_switch"]["while_busy_s"],
    }
    return figures, details


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-hour", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    from sqlalchemy import func, select

    from services.rollup.fold import rollup_pending
    from services.store.demo import seed_demo
    from services.store.schema import notification_events

    with fresh_schema() as (url, _schema, engine):
        log(f"demo data: {args.days} days at {args.per_hour} notifications an hour")
        seed_demo(engine.begin, days=args.days, per_hour=args.per_hour, seed=args.seed)
        rollup_pending(engine, raw_retention_days=120)
        analyze(engine)
        with engine.connect() as conn:
            events = conn.execute(select(func.count()).select_from(notification_events)).scalar()
        server = Server(url, workers=args.workers, port=18083)
        try:
            log(f"  {events:,} events; the dashboard in headless Chromium")
            figures, details = browser_phase(server)
        finally:
            server.stop()
        result = {"started": datetime.now(timezone.utc).isoformat(), "command": " ".join(sys.argv),
                  "dataset": {"events": events, "days": args.days, "per_hour": args.per_hour, "demo_seed": args.seed},
                  "machine": {**machine(engine), "gunicorn_workers": args.workers},
                  "figures": {k: round(figures[k], 3) for k in FIGURE_KEYS}, "details": details}
    write_result(args.out, "browser", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
