"""Policy range of a bill: split each fee line into full self-pay, over-price-limit, 先行自付 and in-scope.

Seed 002 二、1-4: the policy range excludes 丙类 items (全自费), the part of a price above its limit
(超限价), and the 先行自付 share of 乙类 drugs (5%), negotiated drugs (10%) and 乙类 services (10%);
a consumable used with a service the insurance does not pay is not paid either (耗材随项目).
A line whose `fee_ctgy` is one the personal account may not pay (seed 002 十、1: 公共卫生, 体育健身,
养生保健, 健康体检) is outside the fund's range too (基金不予支付): 全自费, and its amount is kept
apart so that the account does not pay it either. The 先行自付 shares are the treatment place's
(就医地目录: seed 003 温馨提示 1, 执行就医地规定的支付范围); the class of each line (`chrgitm_lv`) is
the treatment place's catalogue answer the institution sends.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from schemas.models import FeeDetail

from .exceptions import SettlementRefused
from .money import ZERO, fen, num, pct
from .policy import Catalog

_LV_NAME = {"01": "甲类", "02": "乙类", "03": "丙类"}
_TYPE_NAME = {"drug": "药品", "service": "诊疗项目", "consumable": "耗材"}
_CATEGORY_NAME = {"public_health": "公共卫生", "fitness": "体育健身", "wellness": "养生保健", "checkup": "健康体检"}


@dataclass(frozen=True, slots=True)
class BillTotals:
    medfee_sumamt: Decimal
    fulamt_ownpay_amt: Decimal
    overlmt_selfpay: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    not_acct_payable: Decimal  # lines of a category the account may not pay (within fulamt_ownpay_amt)


def _preselfpay_rate(line: FeeDetail, catalog: Catalog | None) -> tuple[Decimal, str]:
    if catalog is None:  # the treatment place's catalogue is not held: its answer on the line decides
        if line.chrgitm_lv == "01" and line.nego_drug_flag != "1":
            return ZERO, ""
        if line.selfpay_prop is None:
            raise SettlementRefused("NO_CATALOGUE", f"{_what(line)}: yibao holds no catalogue data for the treatment "
                                    "place (就医地目录); send the line's selfpay_prop, its 先行自付 share in that "
                                    "place's catalogue (the national 2204 answer)")
        return line.selfpay_prop, "catalog.treatment_place_selfpay_prop"
    if line.nego_drug_flag == "1":
        return catalog.negotiated_drug_preselfpay, "catalog.negotiated_drug_preselfpay"
    if line.chrgitm_lv == "01":
        return ZERO, ""
    if line.list_type == "drug":
        return catalog.drug_class_b_preselfpay, "catalog.drug_class_b_preselfpay"
    if line.list_type == "service":
        return catalog.service_class_b_preselfpay, "catalog.service_class_b_preselfpay"
    return catalog.consumable_class_b_preselfpay, "catalog.consumable_class_b_preselfpay"


def _what(line: FeeDetail) -> str:
    return f"line {line.feedetl_sn} {_LV_NAME[line.chrgitm_lv]}{_TYPE_NAME[line.list_type]}"


def split_bill(lines: list[FeeDetail], catalog: Catalog | None, not_payable: frozenset[str], steps: list) -> BillTotals:
    """Split every line into the policy-range parts and total them; append a derivation step for
    each line that is not wholly in scope. `catalog`: the treatment place's (就医地目录); None where
    yibao holds none, and then each 乙类 or negotiated line must carry its `selfpay_prop`."""
    unpaid_services = {
        f.feedetl_sn for f in lines if f.list_type == "service" and f.chrgitm_lv == "03"
    }
    medfee = ownpay = overlmt = preselfpay = excluded = ZERO
    for line in lines:
        fee = line.det_item_fee_sumamt
        medfee += fee
        if line.fee_ctgy in not_payable:
            steps.append(("account.not_payable_categories", f"line {line.feedetl_sn} {_CATEGORY_NAME[line.fee_ctgy]} "
                          f"{num(fee)} 全自费, not payable from the personal account"))
            ownpay += fee
            excluded += fee
            continue
        if line.chrgitm_lv == "03":
            steps.append(("catalog.class_c", f"{_what(line)} {num(fee)} 全自费"))
            ownpay += fee
            continue
        if line.svc_feedetl_sn in unpaid_services:
            steps.append(("catalog.consumable_follows_service",
                          f"{_what(line)} {num(fee)} 全自费 (used with unpaid service {line.svc_feedetl_sn})"))
            ownpay += fee
            continue
        over = ZERO
        if line.pric_uplmt_amt is not None:
            limit = fen(line.pric_uplmt_amt * (line.cnt if line.cnt is not None else 1))
            if fee > limit:
                over = fee - limit
                overlmt += over
                steps.append(("catalog.price_limit", f"{_what(line)} {num(fee)}-{num(limit)}={num(over)} 超限价自费"))
        rate, key = _preselfpay_rate(line, catalog)
        if rate:
            pre = fen((fee - over) * rate)
            preselfpay += pre
            steps.append((key, f"{_what(line)} {num(fee - over)}×{pct(rate)}={num(pre)} 先行自付"))
    return BillTotals(medfee, ownpay, overlmt, preselfpay, medfee - ownpay - overlmt - preselfpay, excluded)
