import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from apps.runners.supervisor import supervise_once


class Command(BaseCommand):
    help = (
        "Enforce lease TTLs, ack/job/run timeouts and cancel deadlines; release and finalise runs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="one pass, then exit")
        parser.add_argument(
            "--interval", type=float, default=settings.DELTACI_SUPERVISE_INTERVAL_SECONDS
        )

    def handle(self, *args, **opts):
        stop = {"now": False}

        def _stop(signum, frame):
            stop["now"] = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        while True:
            counts = supervise_once()
            if opts["once"] or any(counts.values()):
                self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
            if opts["once"] or stop["now"]:
                return
            deadline = time.monotonic() + max(0.2, opts["interval"])
            while time.monotonic() < deadline and not stop["now"]:
                time.sleep(0.2)
            if stop["now"]:
                return
            close_old_connections()  # between passes: a long-lived loop must not keep a dead one
