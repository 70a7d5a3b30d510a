"""What the ledger agent writes for one applied request: its result, a dead letter when reference
data is missing, and the clearing entry of a settlement or cancel."""
from __future__ import annotations

from processors.clearing import clearable
from processors.ledger import Ledger, error
from schemas.serde import BadEvent, encode

from . import codec, topics
from .routing import Record, Source, Validated, home, rejected

DLQ_CODES = ("UNKNOWN_PERSON", "UNKNOWN_INSTITUTION")  # reference data missing: the agency must act
CLEARING_FIELDS = ("setl_id", "init_setl_id", "fixmedins_code", "psn_no", "insutype", "clr_type", "setl_time",
                   "medfee_sumamt", "fund_pay_sumamt", "hifp_pay", "hifob_pay", "maf_pay", "acct_pay",
                   "acct_mulaid_pay", "psn_cash_pay", "pkg_surplus_pay", "policy_id")


def apply(ledger: Ledger, op: dict, emit: bool, partitions: int, validated: Validated | None = None) -> list[Record]:
    """Apply the request an op carries (validated by this process's router, if `validated` has it,
    else here); the records to write when the op answers (`ack`) and this is not a replay. A
    settlement's or cancel's clearing entry goes to its institution's partition of `clearing.entries`
    (of `partitions`), with the clearing pair the ledger decided."""
    ctype, body = op["content_type"], op["body"]
    event = validated.take(op) if validated is not None else None
    if event is None:
        event = codec.decode(body, ctype)
    if isinstance(event, BadEvent):  # the router validated it: only a changed schema gets here
        result = error(event.infno, event.msgid, "BAD_EVENT", event.reason)
        data = encode(result)
    else:
        result, data = ledger.answer(event)
    if not emit or not op["ack"]:
        return []
    code = getattr(event, "fixmedins_code", None) or "agency"
    out = [Record(topics.RESULTS, code.encode(), data if ctype == codec.JSON else codec.encode_result(result, ctype),
                  [("content-type", ctype.encode())])]
    err = result["err_msg"] or ""
    if result["infcode"] != 0 and err.split(":")[0] in DLQ_CODES:
        source = Source(op["source_topic"], op["source_partition"], op["source_offset"], op["source_timestamp"])
        out.append(Record(topics.REJECTED, None, rejected(body, source, ctype, err, result["infno"],
                                                          result["inf_refmsgid"]), codec.AVRO_HEADERS))
    info = clearable(result)
    if info is not None:
        treated, insured = ledger.places(info.get("init_setl_id") or info["setl_id"])
        entry = {k: info.get(k) for k in CLEARING_FIELDS}
        entry.update(msgid=info["medins_setl_id"], insuplc_admdvs=insured, mdtrtarea_admvs=treated)
        code = info["fixmedins_code"]
        out.append(Record(topics.CLEARING, code.encode(), codec.encode_record("clearing_entry", entry),
                          codec.AVRO_HEADERS, home(code, partitions)))
    return out


def refuse(op: dict, code: str, reason: str) -> list[Record]:
    """An error result for the request an op carries, without applying it."""
    event = codec.decode(op["body"], op["content_type"])
    result = error(event.infno, event.msgid, code, reason)
    who = (getattr(event, "fixmedins_code", None) or "agency").encode()
    return [Record(topics.RESULTS, who, codec.encode_result(result, op["content_type"]),
                   [("content-type", op["content_type"].encode())])]
