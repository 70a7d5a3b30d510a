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
from .routing import Record, Source, rejected

DLQ_CODES = ("UNKNOWN_PERSON", "UNKNOWN_INSTITUTION")  # reference data missing: the agency must act
CLEARING_FIELDS = ("setl_id", "init_setl_id", "fixmedins_code", "psn_no", "insutype", "clr_type", "setl_time",
                   "medfee_sumamt", "fund_pay_sumamt", "hifp_pay", "hifob_pay", "maf_pay", "acct_pay",
                   "acct_mulaid_pay", "psn_cash_pay", "pkg_surplus_pay", "policy_id")


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

    def apply(self, partition: int, offset: int, value: bytes, emit: bool = True, timestamp_ms: int = 0) -> list[Record]:
        """Apply one `ledger_op`; return the records to produce (none while replaying)."""
        ledger = self.ledgers[partition]
        self.next_offset[partition] = offset + 1
        try:
            op = codec.decode_record("ledger_op", value)
        except ValueError as e:  # not written by the router: foreign bytes on an internal topic
            if not emit:
                return []
            source = Source(topics.LEDGER_OPS, partition, offset, timestamp_ms)
            return [Record(topics.REJECTED, None, rejected(value, source, codec.AVRO, f"not a ledger_op record: {e}"),
                           codec.AVRO_HEADERS)]
        ctype, body = op["content_type"], op["body"]
        event = codec.decode(body, ctype)
        if isinstance(event, BadEvent):  # the router validated it: only a changed schema gets here
            result = error(event.infno, event.msgid, "BAD_EVENT", event.reason)
        else:
            result = ledger.apply(event)
        if not emit or not op["ack"]:
            return []
        code = getattr(event, "fixmedins_code", None) or "agency"
        out = [Record(topics.RESULTS, code.encode(), codec.encode_result(result, ctype),
                      [("content-type", ctype.encode())])]
        err = result["err_msg"] or ""
        if result["infcode"] != 0 and err.split(":")[0] in DLQ_CODES:
            source = Source(op["source_topic"], op["source_partition"], op["source_offset"], op["source_timestamp"])
            out.append(Record(topics.REJECTED, None, rejected(body, source, ctype, err, result["infno"],
                                                              result["inf_refmsgid"]), codec.AVRO_HEADERS))
        info = (result.get("output") or {}).get("setlinfo") if result["infcode"] == 0 else None
        if info is not None:
            entry = {k: info.get(k) for k in CLEARING_FIELDS}
            entry.update(msgid=info["medins_setl_id"], insuplc_admdvs=getattr(event, "insuplc_admdvs", None),
                         mdtrtarea_admvs=getattr(event, "mdtrtarea_admvs", None))
            out.append(Record(topics.CLEARING, info["setl_id"].encode(), codec.encode_record("clearing_entry", entry),
                              codec.AVRO_HEADERS))
        return out
