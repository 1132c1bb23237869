"""gunicorn's settings for the web process.

    gunicorn -c python:config.gunicorn config.wsgi:application

Sync workers, two per core: each process serves one request at a time, the kernel's accept
queue hands connections to the next free process in arrival order, and no request waits for
another thread's turn at the GIL. Serving an offer is CPU-bound Python with two short database
round trips, so on the two-core bench machine this gave about the same throughput as the
earlier 2 gthread workers × 8 threads and half the tail latency at saturation (README,
*Performance*, "Offers"). A sync worker does not keep a connection open between requests and is
occupied while a slow client sends its body: run it behind a load balancer or reverse proxy
that buffers requests (nginx, an AWS ALB, Heroku's router), as gunicorn's documentation asks.

Each worker imports the whole application (about 200 MB) and holds one database connection, so
the default counts the cores this process may use: its CPU affinity, and a container's CPU
quota (cgroup v2 ``cpu.max``) where one is set, not the host's cores. ``WEB_CONCURRENCY`` (a
whole number from 1, or unset) sets the number of workers, ``PORT`` the port; both can also be
given on the command line (``--workers``, ``--bind``) or in ``GUNICORN_CMD_ARGS``.
"""

import math
import os
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cores() -> int:
    """The CPUs this process can use: its affinity, lowered to a container's CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        limit = math.ceil(int(quota) / int(period))  # a quota of "max" raises: no limit
    except (OSError, ValueError):  # no cgroup v2 quota here
        return count
    return min(count, max(1, limit))


def _workers() -> int:
    value = os.environ.get("WEB_CONCURRENCY") or ""
    if not value:
        return 2 * cores()
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise ValueError(f"WEB_CONCURRENCY must be a whole number from 1, not {value!r}")
    return int(value)


bind = f"0.0.0.0:{os.environ.get('PORT') or '8000'}"
worker_class = "sync"
workers = _workers()
# A request still running after this many seconds has its worker killed (the client's
# connection drops; a proxy in front answers 502). With a broker every slow job is queued, and
# the slowest page, an analysis's Results with its four charts drawn, takes a few seconds.
# Without one (CELERY_BROKER_URL unset: tasks run eagerly, inside the request), a large
# analysis started from admin can take longer: that layout is for development only.
timeout = 60
graceful_timeout = 30
accesslog = "-"
