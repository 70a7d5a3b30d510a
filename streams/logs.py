"""The worker's logs: one JSON object per line by default (YIBAO_LOG_FORMAT=text for people), and
never a full ID number: anything shaped like a resident ID or insured-person number is masked,
whatever logger wrote it (ours, Faust's or aiokafka's)."""
from __future__ import annotations

import json
import logging
import re

from schemas.privacy import mask_id

# 15-18 digit runs (resident ID numbers end in a digit or X) and long psn_no-like tokens.
_ID = re.compile(r"(?<![0-9A-Za-z])\d{14,17}[0-9Xx](?![0-9A-Za-z])")


def mask_text(text: str) -> str:
    return _ID.sub(lambda m: mask_id(m.group()), text)


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
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["default"]},
    }
