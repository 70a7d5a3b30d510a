"""One readable line per Kafka record for `yibao tail`, with personal numbers masked."""
from __future__ import annotations

import json

from schemas.privacy import mask_id


def describe(topic: str, record) -> str:
    head = f"[dim]{topic}[{record.partition}]@{record.offset}[/dim]"
    headers = {k: v.decode("utf-8", "replace") for k, v in (record.headers or [])}
    if "yb-reason" in headers:
        src = f"{headers.get('yb-source-topic')}[{headers.get('yb-source-partition')}]@{headers.get('yb-source-offset')}"
        return f"{head} [red]rejected[/red] from {src} ({len(record.value or b'')} bytes): {headers['yb-reason']}"
    try:
        doc = json.loads(record.value)
    except (ValueError, TypeError):
        return f"{head} {len(record.value or b'')} bytes, not JSON"
    if not isinstance(doc, dict):
        return f"{head} {doc!r}"[:200]
    if "infcode" in doc:
        if doc["infcode"] != 0:
            return f"{head} {doc.get('infno')} {doc.get('inf_refmsgid')} [red]{doc.get('err_msg')}[/red]"
        info = (doc.get("output") or {}).get("setlinfo")
        if not info:
            return f"{head} {doc.get('infno')} {doc.get('inf_refmsgid')} ok"
        return (f"{head} {doc['infno']} {info['medins_setl_id']} psn {mask_id(info['psn_no'])} {info['benefit']}: "
                f"total {info['medfee_sumamt']} fund {info['fund_pay_sumamt']} account {info['acct_pay']} "
                f"cash {info['psn_cash_pay']}" + (f" [yellow]{doc['warn_msg']}[/yellow]" if doc.get("warn_msg") else ""))
    if "setl_id" in doc:
        return f"{head} clearing {doc['setl_id']} {doc.get('fixmedins_code')} fund {doc.get('fund_pay_sumamt')}"
    return f"{head} {doc.get('infno')} {doc.get('msgid')} psn {mask_id(_psn(doc))}"


def _psn(doc: dict) -> str | None:
    inp = doc.get("input") or {}
    data = inp.get("data", inp) if isinstance(inp, dict) else {}
    return data.get("psn_no") if isinstance(data, dict) else None
