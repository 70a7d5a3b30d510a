"""The router's decision for one incoming message: forward to the person's ledger partition (a
clearing command to clearing.entries), or reject.

Pure: given the message, it returns the records to produce. What goes on `ledger.ops` is a
`ledger_op` Avro record carrying the request exactly as received, with its source. Invalid input
goes to `settle.rejected` as a `rejected` record (original bytes, source, reason); when the message
still shows a `msgid` and a `fixmedins_code`, an error result goes to `settle.results` too, so a POS
never waits.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from aiokafka.partitioner import murmur2

from processors.clearing import close_ack
from processors.ledger import error
from schemas.avro import message_time
from schemas.models import CLEARING_EVENTS, ClearingCloseEvent, psn_no_of
from schemas.serde import BadEvent, safe_text

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
    timestamp_ms: int


COORDINATOR = 0  # the ledger.ops partition that places ledger groups (streams/groups.py)
# a command among the entries of clearing.entries (a ledger_op record): a month's close, a 3201
CLEARING_COMMAND = ("yb-record", b"ledger_op")
BINDINGS = ("acct_bind", "acct_unbind")


class Validated:
    """Requests this process's router has validated, for its own ledger agent to take instead of
    validating the same bytes again: each request is validated once when its router and its ledger
    run in one worker (always with one worker; with n, for about 1 in n requests).

    Nothing is trusted across processes or versions: an entry is found only by the op's source
    (topic, partition, offset), is used only when the op's body is byte for byte what was validated,
    and lives in memory only. A rebuild, a replay, another worker's ledger, or an entry evicted (at
    most `most` are held, oldest out first) validates the body again, with the code it runs."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.events: dict[tuple[str, int, int], tuple[bytes, object]] = {}

    def put(self, source: Source, body: bytes, event) -> None:
        events = self.events
        events[source.topic, source.partition, source.offset] = (body, event)
        if len(events) > self.most:
            del events[next(iter(events))]

    def take(self, op: dict):
        """The validated event of the request `op` carries, or None."""
        held = self.events.pop((op["source_topic"], op["source_partition"], op["source_offset"]), None)
        return held[1] if held is not None and held[0] == op["body"] else None


def reason_class(reason: str) -> str:
    """A short, bounded label for the rejects metric."""
    for prefix, label in (("not JSON", "not_json"), ("message of", "too_large"), ("empty", "empty"),
                          ("content-type", "content_type"), ("UNKNOWN_PERSON", "unknown_person"),
                          ("UNKNOWN_INSTITUTION", "unknown_institution")):
        if reason.startswith(prefix):
            return label
    return "invalid"


def group_of(event) -> str | None:
    """The person an event is about, whom it is routed by; None for reference data every partition needs."""
    return psn_no_of(event)


@lru_cache(maxsize=1 << 16)
def home(key: str, partitions: int) -> int:
    """The partition of a key: a person's (psn_no) on ledger.ops, an institution's (fixmedins_code) on
    clearing.entries. Kafka's default partitioner (murmur2), so the place does not depend on which
    client wrote the record."""
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions


def rejected(value: bytes, source: Source, ctype: str | None, reason: str, infno: str | None = None,
             msgid: str | None = None) -> bytes:
    return codec.encode_record("rejected", {
        "original": value[:topics.REJECTED_MAX_BYTES], "source_topic": source.topic,
        "partition": source.partition, "offset": source.offset, "content_type": ctype,
        "original_size": len(value), "reason": safe_text(reason), "infno": infno and safe_text(infno),
        "msgid": msgid and safe_text(msgid), "rejected_at": message_time(source.timestamp_ms),
    })


def reject(value: bytes, key: bytes | None, source: Source, ctype: str, reason: str,
           infno: str | None = None, msgid: str | None = None, fixmedins_code: str | None = None,
           code: str = "BAD_EVENT") -> list[Record]:
    reason = safe_text(reason)
    out = [Record(topics.REJECTED, key, rejected(value, source, ctype, reason, infno, msgid), codec.AVRO_HEADERS)]
    if msgid and fixmedins_code:
        reply = ctype if ctype in codec.SUPPORTED else codec.JSON
        result = error(infno, msgid, code, reason)
        out.append(Record(topics.RESULTS, fixmedins_code.encode(), codec.encode_result(result, reply),
                          [("content-type", reply.encode())]))
    return out


def route(value: bytes | None, key: bytes | None, headers: dict[str, bytes], source: Source,
          partitions: int, max_bytes: int, validated: Validated | None = None) -> list[Record]:
    """The records for one message (a request it forwards to a ledger is also put in `validated`).
    Never raises: whatever cannot be routed is dead-lettered with its original bytes and a reason, so
    one message can never cost the messages batched with it."""
    ctype = codec.content_type(headers)
    try:
        return _route(value or b"", key, ctype, source, partitions, max_bytes, validated)
    except Exception as e:  # noqa: BLE001 - a case no check foresaw (a bug): dead-letter, say what happened
        reason = f"internal error while routing this message ({type(e).__name__}: {e}); report it with this record"
        return [Record(topics.REJECTED, key, rejected(value or b"", source, ctype, reason), codec.AVRO_HEADERS)]


def _route(value: bytes, key: bytes | None, ctype: str, source: Source, partitions: int, max_bytes: int,
           validated: Validated | None) -> list[Record]:
    if not value.strip():
        return reject(value, key, source, ctype, "empty message")
    if len(value) > max_bytes:
        return reject(value, key, source, ctype,
                      f"message of {len(value)} bytes exceeds the limit of {max_bytes} bytes (YIBAO_MAX_MESSAGE_BYTES)")
    event = codec.decode(value, ctype)
    if isinstance(event, BadEvent):
        return reject(value, key, source, ctype, event.reason, event.infno, event.msgid, event.fixmedins_code)
    group = group_of(event) if not isinstance(event, CLEARING_EVENTS) else event.fixmedins_code or "*"
    op = {"group": group or "*", "source_topic": source.topic, "source_partition": source.partition,
          "source_offset": source.offset, "source_timestamp": source.timestamp_ms, "content_type": ctype,
          "body": value, "ack": True, "kind": "event", "via_partition": -1, "via_offset": -1, "seq": 0,
          "payload": b""}
    if isinstance(event, CLEARING_EVENTS):
        return _clearing(event, op, ctype, partitions)
    if validated is not None:
        validated.put(source, value, event)
    if group is None:  # reference data: one copy per ledger partition, answered by partition 0's
        return [Record(topics.LEDGER_OPS, b"*", codec.encode_record("ledger_op", dict(op, ack=p == 0)),
                       codec.AVRO_HEADERS, p) for p in range(partitions)]
    if event.infno in BINDINGS:  # the coordinator knows where both sides' groups live
        return [Record(topics.LEDGER_OPS, group.encode("utf-8"), codec.encode_record("ledger_op", dict(op, kind="coord")),
                       codec.AVRO_HEADERS, COORDINATOR)]
    return [Record(topics.LEDGER_OPS, group.encode("utf-8"), codec.encode_record("ledger_op", op), codec.AVRO_HEADERS,
                   home(group, partitions))]


def _clearing(event, op: dict, ctype: str, partitions: int) -> list[Record]:
    """A month's close goes to every clearing.entries partition (each writes its statements) and is
    answered here; an institution's reconciliation goes to its partition, which answers it."""
    headers = [*codec.AVRO_HEADERS, CLEARING_COMMAND]
    if isinstance(event, ClearingCloseEvent):
        ack = Record(topics.RESULTS, (event.fixmedins_code or "agency").encode(),
                     codec.encode_result(close_ack(event), ctype), [("content-type", ctype.encode())])
        command = codec.encode_record("ledger_op", dict(op, kind="clearing_close", ack=False))
        return [ack] + [Record(topics.CLEARING, b"*", command, headers, p) for p in range(partitions)]
    command = codec.encode_record("ledger_op", dict(op, kind="clearing_reconcile"))
    return [Record(topics.CLEARING, op["group"].encode(), command, headers, home(op["group"], partitions))]
