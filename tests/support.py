"""Builders of wire events and a runner that settles them through the public path (decode -> Ledger).

Tests describe people, institutions and bills in a few words and get back result envelopes; money
is given as strings or Decimals and compared as Decimals, to the fen.
"""
from __future__ import annotations

from decimal import Decimal
from itertools import count

from connectors.files import settle_lines
from processors.ledger import Ledger
from processors.policy import load_policies
from schemas.models import SETTLE_INFNOS
from schemas.serde import encode

BOOK = load_policies()
_ids = count(1)

HOSPITAL = {1: "H53010100001", 2: "H53010100002", 3: "H53010100003"}
PHARMACY = "P53010100001"
PSN = "530102195001010011"


def institution(code: str, level: int | None, *, pharmacy: bool = False, day_surgery: bool = False,
                matn: bool = False, outpatient_pooling: bool = False) -> dict:
    data = {"fixmedins_code": code, "fixmedins_type": "2" if pharmacy else "1", "admdvs": "530102",
            "day_surgery": day_surgery, "matn": matn, "outpatient_pooling": outpatient_pooling}
    if level is not None:
        data["hosp_lv"] = level
    return {"infno": "institution", "msgid": f"I{next(_ids)}", "input": data}


def hospitals() -> list[dict]:
    """One hospital per level (opened for day surgery and maternity) and one pooling pharmacy."""
    return [institution(code, lv, day_surgery=True, matn=True) for lv, code in HOSPITAL.items()] + [
        institution(PHARMACY, None, pharmacy=True, outpatient_pooling=True)
    ]


def person(psn_no: str = PSN, *, brdy: str = "1960-06-15", retired: bool = False, balc: str | None = None,
           gend: str | None = None, maf_lv: str | None = None, maf_base_inc: str | None = None,
           insuplc_admdvs: str = "530100") -> dict:
    data = {"psn_no": psn_no, "brdy": brdy, "psn_type": "1201" if retired else "1101",
            "insutype": "310", "insuplc_admdvs": insuplc_admdvs}
    if balc is not None:
        data["balc"] = Decimal(balc)
    if gend is not None:
        data["gend"] = gend
    if maf_lv is not None:
        data["maf_lv"], data["maf_base_inc"] = maf_lv, Decimal(maf_base_inc)
    return {"infno": "person", "msgid": f"P{next(_ids)}", "input": data}


def line(amount: str, lv: str = "01", kind: str = "drug", **extra) -> dict:
    return {"det_item_fee_sumamt": Decimal(amount), "chrgitm_lv": lv, "list_type": kind, **extra}


def settlement(lines: list[dict], *, med_type: str = "11", day: str = "2024-11-05", level: int = 1,
               infno: str | None = None, psn_no: str = PSN, fixmedins_code: str | None = None,
               msgid: str | None = None, **data) -> dict:
    """A settlement request. infno defaults by med_type: 2304 for 21/52, 2102 for 41, else 2207."""
    infno = infno or {"21": "2304", "52": "2304", "41": "2102"}.get(med_type, "2207")
    code = fixmedins_code or (PHARMACY if med_type == "41" else HOSPITAL[level])
    feedetail = [dict(l, feedetl_sn=str(i)) for i, l in enumerate(lines, start=1)]
    return {
        "infno": infno, "msgid": msgid or f"M{next(_ids):08d}", "fixmedins_code": code,
        "input": {"data": {"psn_no": psn_no, "mdtrt_id": f"D{next(_ids)}", "med_type": med_type,
                           "setl_time": f"{day} 10:00:00", **data}, "feedetail": feedetail},
    }


def cancel(original: dict, infno: str | None = None, msgid: str | None = None) -> dict:
    infno = infno or {"2207": "2208", "2304": "2305", "2102": "2103"}[original["infno"]]
    return {"infno": infno, "msgid": msgid or f"C{next(_ids)}", "fixmedins_code": original["fixmedins_code"],
            "input": {"data": {"psn_no": original["input"]["data"]["psn_no"], "omsgid": original["msgid"]}}}


def credit(month: str, psn_no: str = PSN, contrib_base: str | None = None, msgid: str | None = None) -> dict:
    data = {"psn_no": psn_no, "month": month}
    if contrib_base is not None:
        data["contrib_base"] = Decimal(contrib_base)
    return {"infno": "acct_credit", "msgid": msgid or f"K{next(_ids)}", "input": data}


def bind(psn_no: str, auth_psn_no: str, relation: str, begndate: str, msgid: str | None = None) -> dict:
    return {"infno": "acct_bind", "msgid": msgid or f"B{next(_ids)}",
            "input": {"psn_no": psn_no, "auth_psn_no": auth_psn_no, "relation": relation, "begndate": begndate}}


def unbind(psn_no: str, auth_psn_no: str, enddate: str) -> dict:
    return {"infno": "acct_unbind", "msgid": f"U{next(_ids)}",
            "input": {"psn_no": psn_no, "auth_psn_no": auth_psn_no, "enddate": enddate}}


def contrib(psn_no: str, amount: str, *, insutype: str = "390", cntr_psn_no: str | None = None,
            relation: str | None = None, year: int = 2025, pay_date: str = "2024-12-16", msgid: str | None = None) -> dict:
    data = {"psn_no": psn_no, "insutype": insutype, "year": year, "cntr_amt": Decimal(amount), "pay_date": pay_date}
    if cntr_psn_no is not None:
        data.update(cntr_psn_no=cntr_psn_no, relation=relation)
    return {"infno": "acct_contrib", "msgid": msgid or f"N{next(_ids)}", "input": data}


def filing(disease: str, psn_no: str = PSN, begndate: str = "2024-01-01") -> dict:
    return {"infno": "2503", "msgid": f"F{next(_ids)}",
            "input": {"psn_no": psn_no, "opsp_dise_code": disease, "begndate": begndate}}


def accumulators(year: int, psn_no: str = PSN, **totals) -> dict:
    return {"infno": "accumulators", "msgid": f"A{next(_ids)}",
            "input": {"psn_no": psn_no, "year": year, **{k: v for k, v in totals.items()}}}


def run(events: list[dict], ledger: Ledger | None = None) -> list[dict]:
    """Settle the events in order through the same path as `yibao settle`; return the results."""
    ledger = ledger or Ledger(BOOK)
    return [item.result for item in settle_lines([encode(e) for e in events], ledger)]


def setlinfo(result: dict) -> dict:
    assert result["infcode"] == 0, result["err_msg"]
    return result["output"]["setlinfo"]


def money(value) -> Decimal:
    return Decimal(str(value))



def settlement_results(*events: dict) -> list[dict]:
    """Settle the events after hospitals(); return the result of every settlement request, in order."""
    return [r for r in run(hospitals() + list(events)) if r["infno"] in SETTLE_INFNOS]


def settle_all(*events: dict) -> list[dict]:
    return [setlinfo(r) for r in settlement_results(*events)]


def settle(*events: dict) -> dict:
    """The setlinfo of the last settlement request among the events."""
    return setlinfo(settlement_results(*events)[-1])


def check(info: dict, **expected) -> None:
    """Assert the named setlinfo amounts to the fen: check(info, hifp_pay="332.50")."""
    assert {k: info[k] for k in expected} == {k: Decimal(v) for k, v in expected.items()}
