"""Settle a JSON-lines file of events in order: the offline path `yibao settle` drives.

Each non-blank line is one event; each gets exactly one result, in order. A line that is not a valid
event gets an error result naming the line and the field, and the run goes on.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from processors.ledger import Ledger, error
from schemas.serde import BadEvent, decode_event


@dataclass(frozen=True, slots=True)
class Settled:
    lineno: int
    event: object | None  # the validated event, None when the line was not one
    result: dict


def settle_lines(lines: Iterable[bytes | str], ledger: Ledger) -> Iterator[Settled]:
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        event = decode_event(line)
        if isinstance(event, BadEvent):
            yield Settled(lineno, None, error(event.infno, event.msgid, "BAD_EVENT", f"line {lineno}: {event.reason}"))
            continue
        yield Settled(lineno, event, ledger.apply(event))
