"""The clearing agent's state: the `clearing.entries` partitions this worker owns, each a
`processors.clearing.Clearing`, and what taking one record produces.

Like the ledger's, a partition's state is a pure function of its log and is rebuilt by replaying it
from offset 0 (`streams.agents.rebuild`), so it recovers exactly after kill -9 without a Faust table.
An entry produces nothing; an institution's reconciliation (3201) its result on `settle.results`; a
month's close the statement of each institution with entries in it, then the partition's receipt,
on `clearing.statements`. A command redelivered (the router redid a batch) is taken once.
"""
from __future__ import annotations

from processors.clearing import SUMS, Clearing, answer, entry
from processors.money import ZERO
from schemas.models import ClearingCloseEvent, ReconcileEvent
from schemas.serde import BadEvent

from . import codec, topics
from .partitions import Partitioned
from .routing import CLEARING_COMMAND, Record, Source, rejected

RECEIPT = "closed"


class ClearingState(Clearing):
    def __init__(self) -> None:
        super().__init__()
        self.commands_seen: dict[tuple[str, int], int] = {}  # the router's source partition -> last offset taken


class PartitionClearing(Partitioned):
    topic = topics.CLEARING

    def fresh(self, partition: int) -> ClearingState:
        return ClearingState()

    def apply(self, partition: int, offset: int, value: bytes, emit: bool = True, timestamp_ms: int = 0,
              headers: dict[str, bytes] | None = None) -> list[Record]:
        state = self.states[partition]
        self.took(partition, offset, value)
        command = (headers or {}).get(CLEARING_COMMAND[0]) == CLEARING_COMMAND[1]
        try:
            doc = codec.decode_record("ledger_op" if command else "clearing_entry", value)
        except ValueError as e:  # not written by yibao: foreign bytes on an internal topic
            return self._reject(partition, offset, timestamp_ms, value, f"not a clearing record: {e}", emit)
        if command:
            return self._command(state, partition, offset, doc, emit)
        if not doc["mdtrtarea_admvs"] or not doc["insuplc_admdvs"]:
            return self._reject(partition, offset, timestamp_ms, value,
                                "clearing entry without its places (mdtrtarea_admvs, insuplc_admdvs)", emit)
        state.add(entry(doc, doc["mdtrtarea_admvs"], doc["insuplc_admdvs"]))
        return []

    def _command(self, state: ClearingState, partition: int, offset: int, op: dict, emit: bool) -> list[Record]:
        source = (op["source_topic"], op["source_partition"])
        if state.commands_seen.get(source, -1) >= op["source_offset"]:
            return []
        state.commands_seen[source] = op["source_offset"]
        ctype = op["content_type"]
        event = codec.decode(op["body"], ctype)
        if isinstance(event, BadEvent) or not isinstance(event, (ClearingCloseEvent, ReconcileEvent)):
            reason = event.reason if isinstance(event, BadEvent) else f"{event.infno} is not a clearing command"
            return self._reject(partition, offset, op["source_timestamp"], op["body"], reason, emit, ctype)
        if isinstance(event, ReconcileEvent):
            result, _ = answer(state, event)
            return [Record(topics.RESULTS, event.fixmedins_code.encode(), codec.encode_result(result, ctype),
                           [("content-type", ctype.encode())])] if emit else []
        month = event.input.setlym
        statements = state.close(month)  # None: this partition closed the month before
        if not emit:
            return []
        out = [Record(topics.STATEMENTS, s["statement_id"].encode(),
                      codec.encode_record("clearing_statement", {"kind": "statement", "partition": partition, **s}),
                      codec.AVRO_HEADERS) for s in statements or ()]
        receipt = {"kind": RECEIPT, "statement_id": f"CLOSED-{month}-p{partition}", "setlym": month,
                   "partition": partition, "statements": len(statements or ()), "again": statements is None,
                   "settlements": 0, "cancels": 0, **{k: ZERO for k in SUMS}, "fund_pay": [], "rows": [], "late": []}
        out.append(Record(topics.STATEMENTS, receipt["statement_id"].encode(),
                          codec.encode_record("clearing_statement", receipt), codec.AVRO_HEADERS))
        return out

    @staticmethod
    def _reject(partition: int, offset: int, timestamp_ms: int, value: bytes, reason: str, emit: bool,
                ctype: str = codec.AVRO) -> list[Record]:
        if not emit:
            return []
        source = Source(topics.CLEARING, partition, offset, timestamp_ms)
        return [Record(topics.REJECTED, None, rejected(value, source, ctype, reason), codec.AVRO_HEADERS)]
