"""The worker's logs: one JSON object per line by default (YIBAO_LOG_FORMAT=text for people), and
never a full ID number: anything shaped like a resident ID or insured-person number is masked,
whatever logger wrote it (ours, Faust's or aiokafka's).

Repeated warnings and errors are rate-limited (`RepeatFilter`): while the broker is unreachable,
aiokafka logs the same few lines ("Unable connect to node with id 1: ...") several times a second.
The first one of a kind is written, then at most one per `REPEAT_WINDOW` seconds, ending in
"(N similar lines suppressed)". Critical lines and tracebacks that mode relays line by line
(logger `mode.redirect`) are never held back.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time

from schemas.privacy import mask_id

# 15-18 digit runs (resident ID numbers end in a digit or X) and long psn_no-like tokens.
_ID = re.compile(r"(?<![0-9A-Za-z])\d{14,17}[0-9Xx](?![0-9A-Za-z])")


def mask_text(text: str) -> str:
    return _ID.sub(lambda m: mask_id(m.group()), text)


REPEAT_WINDOW = 30.0  # seconds: at most one line of a kind per window, after the first
_DIGITS = re.compile(r"\d+")


class RepeatFilter(logging.Filter):
    """Let the first WARNING/ERROR line of a kind through, then at most one per `window` seconds,
    with the number of similar lines suppressed meanwhile appended to it.

    Lines are "similar" when logger, level and message agree once IDs are masked and every run of
    digits is set aside (ports, offsets, node ids and counters differ from one retry to the next).
    """

    MAX_KINDS = 2048  # forget kinds whose window is over when there are more than this

    def __init__(self, window: float = REPEAT_WINDOW, clock=time.monotonic) -> None:
        super().__init__()
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._kinds: dict[tuple, list] = {}  # kind -> [time of the last line written, lines suppressed since]

    def filter(self, record: logging.LogRecord) -> bool:
        if not logging.WARNING <= record.levelno < logging.CRITICAL or record.name == "mode.redirect":
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let the formatter report it
            return True
        kind = (record.name, record.levelno, _DIGITS.sub("#", mask_text(message)))
        now = self._clock()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and now - seen[0] < self.window:
                seen[1] += 1
                return False
            suppressed = seen[1] if seen is not None else 0
            if seen is None and len(self._kinds) >= self.MAX_KINDS:
                self._forget(now)
            self._kinds[kind] = [now, 0]
        if suppressed:
            record.msg = f"{message} ({suppressed} similar lines suppressed)"
            record.args = None
        return True

    def _forget(self, now: float) -> None:
        for kind in [k for k, (last, _) in self._kinds.items() if now - last >= self.window]:
            del self._kinds[kind]
        if len(self._kinds) >= self.MAX_KINDS:  # all recent: start over rather than grow without bound
            self._kinds.clear()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
               "logger": record.name, "message": mask_text(record.getMessage())}
        if record.exc_info:
            doc["exception"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(doc, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("[%(asctime)s] [%(levelname)s] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record))


def logging_config(level: str, fmt: str) -> dict:
    """A dictConfig for the worker (passed to Faust's Worker, which applies it)."""
    formatter = {"json": f"{__name__}.JsonFormatter", "text": f"{__name__}.TextFormatter"}.get(fmt)
    if formatter is None:
        raise SystemExit(f"YIBAO_LOG_FORMAT={fmt!r}: use json or text")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": {"()": formatter}},
        "filters": {"repeats": {"()": f"{__name__}.RepeatFilter"}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "filters": ["repeats"], "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["default"]},
    }
