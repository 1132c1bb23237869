"""WSGI entry point (gunicorn config.wsgi:application).

Everything a request needs is imported here, before the first request (the URLconf pulls in
DRF, scipy, statsmodels, matplotlib…), and then frozen out of the garbage collector: those
~200,000 long-lived objects would otherwise be scanned by every full collection, a pause of
200 ms or more that stalls all of a worker's threads at once (gc.freeze, as Instagram does for
its Django workers). New objects are collected as usual.
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()


def _warm_and_freeze() -> None:
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - import every view module now
    gc.collect()  # what is garbage already should not be frozen
    gc.freeze()


_warm_and_freeze()
