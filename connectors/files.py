"""Settle a JSON-lines file of events in order: the offline path `yibao settle` drives.

Each non-blank line is one event; each gets exactly one result, in order. A line that is not a valid
event gets an error result naming the line and the field, and the run goes on.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from processors.clearing import Clearing, answer, booked
from processors.ledger import Ledger, error
from schemas.models import CLEARING_EVENTS
from schemas.serde import BadEvent, decode_event, encode, safe_text


@dataclass(frozen=True, slots=True)
class Settled:
    lineno: int
    event: object | None  # the validated event, None when the line was not one
    result: dict
    data: bytes  # the result as JSON (schemas.serde.encode), encoded once


class LedgerFailure(RuntimeError):
    """The ledger failed on a valid event (a bug): the run stops there, as the streaming worker does,
    rather than answer anything after it from a state that may be wrong."""

    def __init__(self, lineno: int, error: BaseException) -> None:
        super().__init__(f"line {lineno}: the ledger failed on this event ({type(error).__name__}: {error}); "
                         "results of the lines before it are written")
        self.lineno = lineno


def settle_lines(lines: Iterable[bytes | str], ledger: Ledger, clearing: Clearing | None = None) -> Iterator[Settled]:
    """One result per non-blank line, in order. Raises LedgerFailure when the ledger itself fails.
    Each settlement and cancel is booked in `clearing`, which answers the clearing events (a month's
    close, 3201 reconciliation) in file order."""
    clearing = clearing if clearing is not None else Clearing()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = decode_event(line)
        except Exception as e:  # noqa: BLE001 - a case no check foresaw: this line is bad, the file goes on
            event = BadEvent(None, None, f"cannot be read ({type(e).__name__}: {safe_text(str(e))})")
        if isinstance(event, BadEvent):
            result = error(event.infno, event.msgid, "BAD_EVENT", f"line {lineno}: {event.reason}")
            yield Settled(lineno, None, result, encode(result))
            continue
        try:
            if isinstance(event, CLEARING_EVENTS):
                result, _ = answer(clearing, event)
                data = encode(result)
            else:
                result, data = ledger.answer(event)
                entry = booked(result, ledger.places)
                if entry is not None:
                    clearing.add(entry)
        except Exception as e:
            raise LedgerFailure(lineno, e) from e
        yield Settled(lineno, event, result, data)
