"""gunicorn settings for `gunicorn wsgi:app` (read from the working directory).

Chart answers are short and mostly wait on Postgres or Redis for a millisecond or two, so
each process runs threads (gthread): a request that waits lets another one run. A client
that connects and sends nothing waits in the worker's poller, not in a thread; one that
trickles its headers holds one thread, not a whole process, so it takes more slow clients
than workers × threads to stall a server. Facing the internet, put a proxy that buffers
requests (nginx) in front. Bodies are capped by the app (2 MB, ingest 10 MB: 413 before the
body is read). Command-line flags (-w, -b) override these.
"""
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count())))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = 30                 # a request still running after this is killed with its worker
graceful_timeout = 20
keepalive = 5                # dashboards poll every few seconds: reuse their connections
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# Recycle workers now and then (a bound on any slow leak), staggered. A new worker loads the
# whole app, a second or two of one of the cores: at 20,000 each of 4 workers restarted every
# ~80 s under 1,000 req/s, and at 600 req/s offered the p99 was 152 ms (8.5 ms without restarts).
# 500,000 is about half an hour of each worker at that rate.
max_requests = 500000
max_requests_jitter = 50000


def post_worker_init(worker):
    """Freeze what loading the app made (modules, Dash's layout and bundles list, the
    catalogue): the collector then never walks those objects again. Each full collection of a
    worker took 83–183 ms without this, all of the worker's threads waiting, every 15–30 s under
    load; with it, under 12 ms. Garbage of the start-up is collected first, or it would stay.
    The youngest generation is collected after 10,000 new objects, not 700: an answer's
    objects (a 7-day chart builds a few thousand) are then freed by their count before any
    collection walks them, instead of being walked and promoted two or three times per
    answer (4 % of a miss's instructions)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
