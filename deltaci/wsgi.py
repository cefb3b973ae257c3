"""The web process's entry point.

Everything the first request would import (the URLconf and every view) is imported
here, and then the objects that now exist are frozen out of the garbage collector's
reach: they live as long as the process, and a full collection that walked them all
would pause every thread of the worker for tens of milliseconds (visible as heartbeat
latency spikes under load).
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deltaci.settings")
application = get_wsgi_application()


def _warm_up() -> None:
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every view module
    gc.collect()
    gc.freeze()


_warm_up()
