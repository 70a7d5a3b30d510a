"""Why the worker is stopping when it stops on its own, and the exit code the service turns it into."""
from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger("yibao.health")


class Health:
    """Why the worker is stopping, when it stops on its own: the service turns it into an exit code."""

    def __init__(self) -> None:
        self.fatal: str | None = None

    def stop(self, reason: str) -> None:
        if self.fatal is None:
            self.fatal = reason
            log.critical("%s: stopping the worker (uncommitted input is redone on restart)", reason)
            os.kill(os.getpid(), signal.SIGTERM)
