"""Decode events from JSON and encode results to JSON, with exact decimals and errors that name the field.

Money is Decimal end to end: JSON is parsed by jiter with every non-integer number read as the
Decimal of its text, then validated by pydantic; results are written by orjson with each Decimal
inserted as its own text (332.50, never 332.49999 nor "332.50"). pydantic's own JSON parser reads
numbers through a binary float, which silently rounds what a float cannot hold:
100.00000000000000000001 became 100 and 1e-400 became 0, and both were then settled.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import jiter
import orjson
from pydantic import ValidationError

from .models import EVENT, INFNOS


@dataclass(frozen=True, slots=True)
class BadEvent:
    """An input that is not a valid event: what could be read of its envelope, and why.

    Every text here can be encoded as UTF-8 (see `safe_text`), so a rejection can always be written.
    """

    infno: str | None
    msgid: str | None
    reason: str
    fixmedins_code: str | None = None


def safe_text(text: str) -> str:
    """`text` if it can be encoded as UTF-8, else with what cannot (lone surrogates, which JSON's
    `\\ud800` escapes can carry) written as backslash escapes."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def decode_event(raw: bytes | str):
    """Return the validated event, or a BadEvent naming the field and the problem."""
    try:
        doc = jiter.from_json(raw if isinstance(raw, bytes) else raw.encode("utf-8"),
                              float_mode="decimal")  # NaN, Infinity: refused by pydantic, naming the field
    except ValueError as e:  # UnicodeEncodeError of a str included
        return explain(raw, f"not JSON: {e}")
    try:
        return EVENT.validate_python(doc)
    except ValidationError as e:
        # Explain in JSON terms ("Input should be an object", not "a valid dictionary"), unless the
        # JSON parser accepts what only its rounding made valid.
        try:
            EVENT.validate_json(raw)
        except ValidationError as in_json:
            e = in_json
        return explain(raw, e)


def explain(raw: bytes | str, err: ValidationError | str) -> BadEvent:
    """The BadEvent for input that failed to parse (`err` says why) or to validate: the envelope
    fields it still shows, and why. Never raises, whatever the input (deep nesting, numbers of
    thousands of digits, bad UTF-8)."""
    try:
        # Integers as Decimal: Python refuses int() of more than 4,300 digits, and the envelope must
        # still be read to answer the sender.
        doc = json.loads(raw, parse_int=Decimal)
    except RecursionError:
        return BadEvent(None, None, "not JSON: nested too deeply")
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        return BadEvent(None, None, safe_text(f"not JSON: {e}"))
    if not isinstance(doc, dict):
        return BadEvent(None, None, "not a JSON object")
    infno, msgid, code = (_text(doc.get(k)) for k in ("infno", "msgid", "fixmedins_code"))
    escaped = [name for name, v in (("infno", infno), ("msgid", msgid), ("fixmedins_code", code))
               if v is not None and safe_text(v) is not v]
    infno, msgid, code = (safe_text(v) if v is not None else None for v in (infno, msgid, code))
    note = f" ({', '.join(escaped)} escaped: not encodable as UTF-8)" if escaped else ""
    if isinstance(err, str):
        return BadEvent(infno, msgid, safe_text(err) + note, code)
    if infno not in INFNOS:
        return BadEvent(infno, msgid, safe_text(f"infno: {_shown(doc.get('infno'))} is not one of {', '.join(INFNOS)}") + note,
                        code)
    problems = []
    for e in err.errors(include_url=False)[:5]:
        loc = list(e["loc"])
        if loc and loc[0] == infno:
            loc = loc[1:]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        msg = e["msg"].removeprefix("Value error, ")
        problems.append(f"{path}: {msg}" if path else msg)
    more = len(err.errors()) - len(problems)
    return BadEvent(infno, msgid, safe_text("; ".join(problems) + (f" (+{more} more)" if more > 0 else "")) + note, code)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _shown(value: Any) -> str:
    text = str(value) if isinstance(value, Decimal) else repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def _exact(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(obj: Any) -> bytes:
    """One compact JSON document as UTF-8; Decimals as exact numbers, key order as built."""
    return orjson.dumps(obj, default=_exact)
