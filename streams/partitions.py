"""The ledgers of the `ledger.ops` partitions this worker owns, and what applying an op produces.

State is a pure function of a partition's log (the ledger is deterministic), so the log is the
changelog: a partition's ledger is rebuilt by replaying its ops from offset 0 up to the first
offset delivered after an assignment, without emitting anything; then it goes live. An op that
arrives out of sequence (a restart, a rebalance, a redelivery) triggers the same rebuild.
"""
from __future__ import annotations

from processors.ledger import Ledger, error
from processors.policy import PolicyBook
from schemas.serde import BadEvent

from . import codec, topics
from .routing import Record

DLQ_CODES = ("UNKNOWN_PERSON", "UNKNOWN_INSTITUTION")  # reference data missing: the agency must act


class PartitionLedgers:
    def __init__(self, book: PolicyBook) -> None:
        self.book = book
        self.ledgers: dict[int, Ledger] = {}
        self.next_offset: dict[int, int] = {}

    def in_sequence(self, partition: int, offset: int) -> bool:
        return self.next_offset.get(partition) == offset

    def reset(self, partition: int) -> None:
        self.ledgers[partition] = Ledger(self.book)
        self.next_offset[partition] = 0

    def drop(self, partition: int) -> None:
        self.ledgers.pop(partition, None)
        self.next_offset.pop(partition, None)

    def apply(self, partition: int, offset: int, value: bytes, headers: dict[str, bytes],
              emit: bool = True) -> list[Record]:
        """Apply one op; return the records to produce (none while replaying)."""
        ledger = self.ledgers[partition]
        self.next_offset[partition] = offset + 1
        ctype = codec.content_type(headers)
        event = codec.decode(value, ctype)
        if isinstance(event, BadEvent):  # the router validated it: only a changed schema gets here
            result = error(event.infno, event.msgid, "BAD_EVENT", event.reason)
        else:
            result = ledger.apply(event)
        if not emit or headers.get("yb-ack") == b"0":
            return []
        code = getattr(event, "fixmedins_code", None) or "agency"
        out = [Record(topics.RESULTS, code.encode(), codec.encode_result(result, ctype),
                      [("content-type", ctype.encode())])]
        err = result["err_msg"] or ""
        if result["infcode"] != 0 and err.split(":")[0] in DLQ_CODES:
            source = [(k, v) for k, v in headers.items() if k.startswith("yb-source")]
            out.append(Record(topics.REJECTED, None, value,
                              [("content-type", ctype.encode()), *source, ("yb-reason", err.encode("utf-8"))]))
        info = (result.get("output") or {}).get("setlinfo") if result["infcode"] == 0 else None
        if info is not None:
            out.append(Record(topics.CLEARING, info["setl_id"].encode(), codec.encode_result(_clearing(info), codec.JSON),
                              [("content-type", codec.JSON.encode())]))
        return out


CLEARING_FIELDS = ("setl_id", "init_setl_id", "medins_setl_id", "fixmedins_code", "psn_no", "setl_time",
                   "clr_type", "insutype", "medfee_sumamt", "fund_pay_sumamt", "hifp_pay", "hifob_pay",
                   "maf_pay", "acct_pay", "psn_cash_pay", "pkg_surplus_pay", "policy_id")


def _clearing(info: dict) -> dict:
    return {k: info.get(k) for k in CLEARING_FIELDS}
