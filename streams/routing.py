"""The router's decision for one incoming message: forward to the person's ledger partition, or reject.

Pure: given the message, it returns the records to produce. Invalid input goes to `settle.rejected`
with its original bytes and headers naming the source and the reason; when the message still shows
a `msgid` and a `fixmedins_code`, an error result goes to `settle.results` too, so a POS never waits.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from processors.ledger import error
from schemas.models import InstitutionEvent
from schemas.serde import BadEvent

from . import codec, topics


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    partition: int | None = None


@dataclass(frozen=True, slots=True)
class Source:
    topic: str
    partition: int
    offset: int

    def headers(self) -> list[tuple[str, bytes]]:
        return [("yb-source-topic", self.topic.encode()), ("yb-source-partition", str(self.partition).encode()),
                ("yb-source-offset", str(self.offset).encode())]


def group_of(event) -> str | None:
    """The ledger group an event belongs to; None for reference data every partition needs."""
    if isinstance(event, InstitutionEvent):
        return None
    data = getattr(event.input, "data", event.input)
    return data.psn_no


def reject(value: bytes, key: bytes | None, source: Source, ctype: str, reason: str,
           infno: str | None = None, msgid: str | None = None, fixmedins_code: str | None = None) -> list[Record]:
    headers = [("content-type", ctype.encode()), *source.headers(), ("yb-reason", reason.encode("utf-8"))]
    if len(value) > topics.REJECTED_MAX_BYTES:
        headers.append(("yb-truncated", str(len(value)).encode()))
        value = value[:topics.REJECTED_MAX_BYTES]
    if msgid:
        headers.append(("yb-msgid", msgid.encode("utf-8")))
    out = [Record(topics.REJECTED, key, value, headers)]
    if msgid and fixmedins_code:
        result = error(infno, msgid, "BAD_EVENT", reason)
        out.append(Record(topics.RESULTS, fixmedins_code.encode(), codec.encode_result(result, ctype),
                          [("content-type", ctype.encode())]))
    return out


def route(value: bytes | None, key: bytes | None, headers: dict[str, bytes], source: Source,
          partitions: int, max_bytes: int) -> list[Record]:
    ctype = codec.content_type(headers)
    if value is None or not value.strip():
        return reject(value or b"", key, source, ctype, "empty message")
    if len(value) > max_bytes:
        return reject(value, key, source, ctype,
                      f"message of {len(value)} bytes exceeds the limit of {max_bytes} bytes (YIBAO_MAX_MESSAGE_BYTES)")
    event = codec.decode(value, ctype)
    if isinstance(event, BadEvent):
        return reject(value, key, source, ctype, event.reason, event.infno, event.msgid,
                      _peek_institution(value, ctype))
    out_headers = [("content-type", ctype.encode()), *source.headers()]
    group = group_of(event)
    if group is None:  # reference data: one copy per ledger partition, acknowledged by partition 0
        return [Record(topics.LEDGER_OPS, b"*", value, [*out_headers, ("yb-ack", b"1" if p == 0 else b"0")], p)
                for p in range(partitions)]
    return [Record(topics.LEDGER_OPS, group.encode("utf-8"), value, out_headers)]


def _peek_institution(value: bytes, ctype: str) -> str | None:
    if ctype != codec.JSON:
        return None
    try:
        code = json.loads(value).get("fixmedins_code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, str) and code else None
