"""Screenshots of each tab of a running dashboard, for docs/screenshots/.

    make run                                  # in one terminal
    .venv/bin/python -m scripts.screenshots   # in another (needs chromium + chromium-driver)
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

VIEWS = (
    ("overview", "?tab=overview&range=7d"),
    ("drilldown", "?tab=drilldown&range=7d"),
    ("drilldown-template", "?tab=drilldown&range=7d&drill=email,bounced"),
    ("drilldown-reasons", "?tab=drilldown&range=7d&drill=email,bounced,3"),
    ("drilldown-events", "?tab=drilldown&range=7d&drill=email,bounced,3,hard_bounce"),
    ("trends", "?tab=trends&range=7d&channel=sms"),
    ("compare", "?tab=compare&range=7d"),
    ("metrics", "?tab=metrics&range=7d"),
    ("correlations", "?tab=correlations&range=7d"),
    ("alerts", "?tab=alerts&range=24h&alert=1"),  # after a rule exists (see README, Alerts)
    ("wall", "?tab=overview&range=24h&theme=dark&density=compact"),
    ("investigate-user", "?tab=investigate&range=7d&find={user}"),
    ("investigate-notification", "?tab=investigate&range=7d&find={notification}"),
)


def investigated(url: str) -> dict:
    """The user with the most bounced emails this week, and one of those notifications."""
    import requests

    api = url.split("/analytics/")[0] + "/api/analytics"
    user = requests.get(f"{api}/users?metric=bounced&channel=email&start=now-7d&limit=1", timeout=30
                        ).json()["users"][0]["user_id"]
    events = requests.get(f"{api}/events?user_id={user}&channel=email&status=bounced&start=now-7d", timeout=30
                          ).json()["events"]
    return {"user": user, "notification": events[0]["notification_id"]}


def browser(width: int = 1440, height: int = 1700) -> webdriver.Chrome:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options)


def settle(driver, timeout: float = 20) -> None:
    """Wait until Dash has no callback in flight and no chart is loading."""
    WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.ID, "tab-content")))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = driver.execute_script(
            "return document.querySelectorAll('[data-dash-is-loading=\"true\"], ._dash-loading').length")
        if not busy:
            time.sleep(0.8)
            if not driver.execute_script(
                    "return document.querySelectorAll('[data-dash-is-loading=\"true\"]').length"):
                return
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8050/analytics/")
    parser.add_argument("--out", default="docs/screenshots")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    driver = browser()
    found = investigated(args.url)
    try:
        for name, search in VIEWS:
            driver.get(args.url + search.format(**found))
            settle(driver)
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(1440, max(900, min(height + 120, 2400)))
            settle(driver)
            driver.save_screenshot(str(out / f"{name}.png"))
            print(f"wrote {out / f'{name}.png'}")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
