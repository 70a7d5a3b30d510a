"""Decode events from JSON and encode results to JSON, with exact decimals and errors that name the field.

Money is Decimal end to end: JSON numbers are parsed exactly by pydantic, and results are written
by orjson with each Decimal inserted as its own text (332.50, never 332.49999 nor "332.50").
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from pydantic import ValidationError

from .models import EVENT, INFNOS


@dataclass(frozen=True, slots=True)
class BadEvent:
    """An input that is not a valid event: what could be read of its envelope, and why."""

    infno: str | None
    msgid: str | None
    reason: str


def decode_event(raw: bytes | str):
    """Return the validated event, or a BadEvent naming the field and the problem."""
    try:
        return EVENT.validate_json(raw)
    except ValidationError as e:
        return explain(raw, e)


def explain(raw: bytes | str, err: ValidationError) -> BadEvent:
    """The BadEvent for input that failed validation: the envelope fields it still shows, and why."""
    try:
        doc = json.loads(raw)
    except ValueError as e:
        return BadEvent(None, None, f"not JSON: {e}")
    if not isinstance(doc, dict):
        return BadEvent(None, None, "not a JSON object")
    infno, msgid = doc.get("infno"), doc.get("msgid")
    infno = infno if isinstance(infno, str) else None
    msgid = msgid if isinstance(msgid, str) else None
    if infno not in INFNOS:
        return BadEvent(infno, msgid, f"infno: {doc.get('infno')!r} is not one of {', '.join(INFNOS)}")
    problems = []
    for e in err.errors(include_url=False)[:5]:
        loc = list(e["loc"])
        if loc and loc[0] == infno:
            loc = loc[1:]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        msg = e["msg"].removeprefix("Value error, ")
        problems.append(f"{path}: {msg}" if path else msg)
    more = len(err.errors()) - len(problems)
    return BadEvent(infno, msgid, "; ".join(problems) + (f" (+{more} more)" if more > 0 else ""))


def _exact(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(obj: Any) -> bytes:
    """One compact JSON document as UTF-8; Decimals as exact numbers, key order as built."""
    return orjson.dumps(obj, default=_exact)
