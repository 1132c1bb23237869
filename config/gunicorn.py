"""gunicorn's settings for the web process.

    gunicorn -c python:config.gunicorn config.wsgi:application

Sync workers, two per core: each process serves one request at a time, the kernel's accept
queue hands connections to the next free process in arrival order, and no request waits for
another thread's turn at the GIL. Serving an offer is CPU-bound Python with four short database
round trips, so on the two-core bench machine this gave about the same throughput as the
earlier 2 gthread workers × 8 threads and half the tail latency at saturation (README,
*Performance*, "Offers"). A sync worker does not keep a connection open between requests and is
occupied while a slow client sends its body: run it behind a load balancer or reverse proxy
that buffers requests (nginx, an AWS ALB, Heroku's router), as gunicorn's documentation asks.

Every setting can be overridden on the command line (``--bind``, ``--workers``) or through
``GUNICORN_CMD_ARGS``; ``WEB_CONCURRENCY`` sets the number of workers.
"""

import os


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this process may run on (containers)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "sync"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * _cores())
# A request still running after this many seconds has its worker restarted (and answers 502):
# the slowest page, an analysis's Results with its four charts drawn, takes a few seconds.
timeout = 60
graceful_timeout = 30
accesslog = "-"
