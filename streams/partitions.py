"""The `ledger.ops` partitions this worker owns, and what taking an op on one of them produces.

State is a pure function of a partition's log (the ledger and the group placement are
deterministic), so the log is the changelog: a partition's state is rebuilt up to the first offset
delivered after an assignment, from its newest usable snapshot (streams/snapshots.py) or offset 0,
without emitting anything; then it goes live. An op that arrives out of sequence (a restart, a
rebalance, a redelivery) triggers the same rebuild.
"""
from __future__ import annotations

from processors.ledger import ANSWER_DAYS
from processors.policy import PolicyBook

from . import codec, topics
from .groups import PartitionState
from .routing import Record, Source, Validated, rejected


class Partitioned:
    """The state of each owned partition of a topic whose log is its changelog, and the offset it
    reflects: `apply` takes the record at `next_offset`; anything else asks for a rebuild."""

    topic: str

    def __init__(self) -> None:
        self.states: dict = {}
        self.next_offset: dict[int, int] = {}
        self.last_value: dict[int, bytes] = {}  # partition -> the value of the record at next_offset - 1

    def fresh(self, partition: int):
        raise NotImplementedError

    def in_sequence(self, partition: int, offset: int) -> bool:
        return self.next_offset.get(partition) == offset

    def reset(self, partition: int, state=None, offset: int = 0, last_value: bytes = b"") -> None:
        """Start the partition over: empty at offset 0, or `state` (a snapshot's) at `offset`."""
        self.states[partition] = self.fresh(partition) if state is None else state
        self.next_offset[partition] = offset
        self.last_value[partition] = last_value

    def drop(self, partition: int) -> None:
        self.states.pop(partition, None)
        self.next_offset.pop(partition, None)
        self.last_value.pop(partition, None)

    def took(self, partition: int, offset: int, value: bytes) -> None:
        """The record at `offset` is taken (applied, or skipped: a restore's placeholder)."""
        self.next_offset[partition] = offset + 1
        self.last_value[partition] = value

    def apply(self, partition: int, offset: int, value: bytes, emit: bool = True, timestamp_ms: int = 0,
              headers: dict[str, bytes] | None = None) -> list[Record]:
        raise NotImplementedError


class PartitionLedgers(Partitioned):
    topic = topics.LEDGER_OPS

    def __init__(self, book: PolicyBook, partitions: int, answer_days: int | None = ANSWER_DAYS,
                 validated: Validated | None = None) -> None:
        super().__init__()
        self.book, self.partitions, self.answer_days = book, partitions, answer_days
        self.validated = validated  # what this process's router validated (streams.routing.Validated)

    def fresh(self, partition: int) -> PartitionState:
        return PartitionState(partition, self.partitions, self.book, self.answer_days)

    def apply(self, partition: int, offset: int, value: bytes, emit: bool = True, timestamp_ms: int = 0,
              headers: dict[str, bytes] | None = None) -> list[Record]:
        """Take one `ledger_op`; return the records to produce (none while replaying)."""
        state = self.states[partition]
        self.took(partition, offset, value)
        try:
            op = codec.decode_record("ledger_op", value)
        except ValueError as e:  # not written by yibao: foreign bytes on an internal topic
            if not emit:
                return []
            source = Source(topics.LEDGER_OPS, partition, offset, timestamp_ms)
            return [Record(topics.REJECTED, None, rejected(value, source, codec.AVRO, f"not a ledger_op record: {e}"),
                           codec.AVRO_HEADERS)]
        return state.handle(offset, op, emit, self.validated)
