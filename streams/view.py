"""One readable line per Kafka record for `yibao tail`, with personal numbers masked."""
from __future__ import annotations

import json
from decimal import Decimal

from schemas import avro
from schemas.privacy import mask_id

from . import codec, topics
from .routing import CLEARING_COMMAND

AVRO_RECORDS = {topics.REJECTED: "rejected", topics.LEDGER_OPS: "ledger_op", topics.CLEARING: "clearing_entry",
                topics.STATEMENTS: "clearing_statement"}


def document(topic: str, record) -> dict | None:
    """A record of `topic` (anything with `.headers` as (key, value) pairs and `.value`) decoded by its
    content type and topic; None when it cannot be read. `yibao replay` compares records through it."""
    headers = {k: v for k, v in (record.headers or [])}
    ctype = codec.content_type(headers)
    try:
        if ctype == codec.JSON:
            doc = json.loads(record.value, parse_float=Decimal)
            return doc if isinstance(doc, dict) else None
        if headers.get(CLEARING_COMMAND[0]) == CLEARING_COMMAND[1]:
            return avro.decode_record("ledger_op", record.value)
        if topic in AVRO_RECORDS:
            return avro.decode_record(AVRO_RECORDS[topic], record.value)
        if topic == topics.RESULTS:
            return avro.decode_result(record.value)
        return avro.decode_request(record.value)
    except (ValueError, TypeError):
        return None


def describe(topic: str, record) -> str:
    head = f"[dim]{topic}[{record.partition}]@{record.offset}[/dim]"
    doc = document(topic, record)
    if doc is None:
        return f"{head} {len(record.value or b'')} bytes, unreadable"
    if topic == topics.REJECTED:
        return (f"{head} [red]rejected[/red] {doc['source_topic']}[{doc['partition']}]@{doc['offset']} "
                f"({doc['original_size']} bytes, {doc['rejected_at']}): {doc['reason']}")
    if topic == topics.LEDGER_OPS or "kind" in doc and "body" in doc:
        via = f" via ledger.ops[{doc['via_partition']}]@{doc['via_offset']}" if doc["via_partition"] >= 0 else ""
        return (f"{head} {doc['kind']} op for {mask_id(doc['group'])} from {doc['source_topic']}"
                f"@{doc['source_offset']}{via}")
    if topic == topics.STATEMENTS:
        if doc["kind"] != "statement":
            return (f"{head} {doc['setlym']} closed on partition {doc['partition']}: {doc['statements']} statements"
                    + (" (closed before)" if doc["again"] else ""))
        return (f"{head} statement {doc['statement_id']}: {doc['settlements']} settled, {doc['cancels']} cancelled, "
                f"medfee {doc['medfee_sumamt']} fund {doc['fund_pay_sumamt']}" + (f", {len(doc['late'])} late" if doc["late"] else ""))
    if topic == topics.CLEARING:
        return (f"{head} clearing {doc['setl_id']} {doc['fixmedins_code']} fund {doc['fund_pay_sumamt']} "
                f"account {doc['acct_pay']} cash {doc['psn_cash_pay']}")
    if "infcode" in doc:
        if doc["infcode"] != 0:
            return f"{head} {doc.get('infno')} {doc.get('inf_refmsgid')} [red]{doc.get('err_msg')}[/red]"
        info = (doc.get("output") or {}).get("setlinfo")
        if not info:
            return f"{head} {doc.get('infno')} {doc.get('inf_refmsgid')} ok"
        return (f"{head} {doc['infno']} {info['medins_setl_id']} psn {mask_id(info['psn_no'])} {info['benefit']}: "
                f"total {info['medfee_sumamt']} fund {info['fund_pay_sumamt']} account {info['acct_pay']} "
                f"cash {info['psn_cash_pay']}" + (f" [yellow]{doc['warn_msg']}[/yellow]" if doc.get("warn_msg") else ""))
    inp = doc.get("input") or {}
    data = inp.get("data", inp) if isinstance(inp, dict) else {}
    psn = data.get("psn_no") if isinstance(data, dict) else None
    return f"{head} {doc.get('infno')} {doc.get('msgid')} psn {mask_id(psn)}"
