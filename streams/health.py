"""How the worker stops on its own: a fatal condition ends the process at once, with its own exit code.

A fatal stop must not let anything after the failure be acknowledged: Faust acknowledges a whole
`take_events` batch when the agent leaves it, and a graceful shutdown commits what was acknowledged.
So `abort` does not go through Faust's shutdown: it logs, runs the registered clean-ups (stopping
the embedded broker, whose data is lost with the worker anyway) and ends the process with
`os._exit`, exactly as a kill -9 would, which the restart tests show loses nothing: uncommitted
input is redone on restart and the ledger re-produces the same bytes.

A requested stop (SIGTERM/SIGINT) is graceful, but has a deadline (`stop_deadline`, YIBAO_STOP_TIMEOUT):
with the broker unreachable, Faust's consumer and producer wait for it on the way out (measured:
more than 60 s), so past the deadline the stop becomes an `abort` with exit code 5. That is as safe as
the other aborts, for the same reasons.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

log = logging.getLogger("yibao.health")

BROKER_DIED = 3  # the embedded broker exited: every topic is gone with it
AGENT_FAILED = 4  # an error the worker cannot handle per message (a bug, or the broker refusing writes)
STOP_FORCED = 5  # a requested stop did not finish within its deadline (the broker unreachable, mostly)


class Health:
    def __init__(self) -> None:
        self._cleanups: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._deadline: threading.Timer | None = None

    def on_abort(self, cleanup: Callable[[], None]) -> None:
        """Run `cleanup()` before the process ends in `abort` (errors in it are logged, not raised)."""
        self._cleanups.append(cleanup)

    def stop_deadline(self, seconds: float) -> None:
        """A stop was requested: `abort` with STOP_FORCED if the process still runs `seconds` from now.
        Only the first call counts; the timer is a daemon thread, so a process that ends in time ends."""
        if self._deadline is not None or seconds <= 0:
            return
        self._deadline = threading.Timer(seconds, self.abort, (
            f"the requested stop did not finish within {seconds:g} s (YIBAO_STOP_TIMEOUT)", STOP_FORCED))
        self._deadline.daemon = True
        self._deadline.start()

    def abort(self, reason: str, code: int = AGENT_FAILED) -> NoReturn:
        """End the worker now with `code`, from any thread, acknowledging and committing nothing more."""
        with self._lock:  # a second caller (another thread) waits here until the process is gone
            log.critical("%s: stopping the worker now (uncommitted input is redone on restart)", reason)
            for cleanup in self._cleanups:
                try:
                    cleanup()
                except Exception:
                    log.exception("clean-up before exit failed")
            for handler in logging.getLogger().handlers:
                try:
                    handler.flush()
                except Exception:
                    pass
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
