import pytest

from dashapp.config import DEFAULT_DATABASE_URL, ConfigError, build_settings, scheduler_mode


def test_defaults_are_the_embedded_setup():
    settings = build_settings(environ={})
    assert settings["DATABASE_URL"] == DEFAULT_DATABASE_URL
    assert settings["REDIS_URL"] is None
    assert settings["URL_PREFIX"] == "/analytics/"
    assert settings["RAW_RETENTION_DAYS"] == 30 and settings["MINUTE_RETENTION_HOURS"] == 48
    assert len(settings["SECRET_KEY"]) == 64


def test_environment_then_overrides_win_in_order():
    env = {"REDIS_URL": "redis://h/1", "RAW_RETENTION_DAYS": "7", "CHANNELS": "email, sms"}
    settings = build_settings({"RAW_RETENTION_DAYS": 3}, environ=env)
    assert settings["REDIS_URL"] == "redis://h/1"
    assert settings["RAW_RETENTION_DAYS"] == 3
    assert settings["CHANNELS"] == ("email", "sms")


@pytest.mark.parametrize("env, message", [
    ({"ENV": "production", "DATABASE_URL": "postgresql+psycopg://db/x"}, "SECRET_KEY is required"),
    ({"ENV": "production", "SECRET_KEY": "s"}, "DATABASE_URL must be set explicitly"),
    ({"RAW_RETENTION_DAYS": "thirty"}, "RAW_RETENTION_DAYS must be a whole number"),
    ({"SCHEDULER": "sometimes"}, "SCHEDULER must be one of inprocess, off"),
    ({"URL_PREFIX": "analytics"}, "URL_PREFIX must start and end with '/'"),
    ({"MINUTE_RETENTION_HOURS": "0"}, "MINUTE_RETENTION_HOURS must be at least 1"),
    ({"REPLICA_WAIT_SECONDS": "soon"}, "REPLICA_WAIT_SECONDS must be a number of seconds"),
    ({"REPLICA_WAIT_SECONDS": "30"}, "REPLICA_WAIT_SECONDS must be from 0 to 10"),
    ({"REPLICA_RETRY_SECONDS": "0"}, "REPLICA_RETRY_SECONDS must be from 0.1 to 600"),
    ({"DATABASE_READ_URL": "sqlite:///replica.db"}, "DATABASE_READ_URL must be a postgresql"),
    ({"DATABASE_READ_URL": "postgresql+psycopg://replica/x"}, "of the Postgres DATABASE_URL, got postgresql"),
    ({"TRUSTED_PROXIES": "9"}, "TRUSTED_PROXIES must be from 0 to 5"),
])
def test_bad_settings_are_refused_with_their_name(env, message):
    with pytest.raises(ConfigError, match=message):
        build_settings(environ=env)


def test_production_starts_with_secret_and_database():
    settings = build_settings(environ={"ENV": "production", "SECRET_KEY": "k",
                                       "DATABASE_URL": "postgresql+psycopg://db/x"})
    assert settings["SECRET_KEY"] == "k"


@pytest.mark.parametrize("configured, command, expected", [
    (None, "run", "inprocess"), (None, None, "off"), (None, "rollup", "off"),
    ("off", "run", "off"), ("inprocess", None, "inprocess"),
])
def test_scheduler_mode(configured, command, expected):
    assert scheduler_mode({"SCHEDULER": configured}, command) == expected


def test_gunicorn_workers_freeze_what_the_app_made_at_start():
    """The shipped gunicorn.conf.py's worker hook: what exists once the app is loaded is moved
    out of the collector's reach (full collections walked it, 83-183 ms each, under load), and
    an answer's objects are freed before a collection walks them."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    script = ("import gc, runpy; hooks = runpy.run_path('gunicorn.conf.py'); before = gc.get_freeze_count(); "
              "hooks['post_worker_init'](None); print(before, gc.get_freeze_count(), gc.get_threshold()[0])")
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True).stdout
    before, after, youngest = map(int, out.split())
    assert before == 0 and after > 1000
    assert youngest == 10_000
