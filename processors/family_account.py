"""Family mutual aid (个人账户家庭共济): which authorizers may pay for a user on a day, and how a payment is split.

Seed 002 十、2 (5): 优先使用本人个人账户，个人账户余额为0后，再使用授权人个人账户余额。授权人有多人时，默认按照个人
账户余额从多到少的顺序使用。 So a payment takes the user's own account down to 0, then each eligible
authorizer in descending order of their balance at the moment of that payment, each down to 0; what
is left is cash. The seeds give no rule for equal balances: the lower `psn_no` pays first.
A binding is used on a payment date when it is in force then (bound on or before the date, not
unbound on or before it) and its relation is permitted by the rule set in force on that date
(`account.binding_relations`: 2022 parents, spouse, children; from 2024-11-01 近亲属).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from .money import ZERO
from .policy import Policy


@dataclass(frozen=True, slots=True)
class Binding:
    auth_psn_no: str
    relation: str
    begndate: dt.date
    enddate: dt.date | None = None  # exclusive: not in force from this day

    def in_force(self, day: dt.date) -> bool:
        return self.begndate <= day and (self.enddate is None or day < self.enddate)


def authorizers_on(bindings: list[Binding], day: dt.date, policy: Policy) -> list[str]:
    """The authorizers whose binding may pay on `day` under `policy` (the rule set in force that day),
    each once: an unbinding dated later and a new binding from an earlier day are both in force
    between those days, and the authorizer's one account must not be drawn twice."""
    return list(dict.fromkeys(b.auth_psn_no for b in bindings
                              if b.in_force(day) and b.relation in policy.account.binding_relations))


def split(amount: Decimal, own_balance: Decimal, authorizers: list[tuple[str, Decimal]]) -> tuple[Decimal, list[tuple[str, Decimal]]]:
    """(from the own account, [(authorizer, drawn)]) for a payable `amount`; the rest of it is cash.
    `authorizers` are (psn_no, balance) of the eligible ones, in any order."""
    own = min(own_balance, amount)
    left = amount - own
    drawn = []
    for psn_no, balance in sorted(authorizers, key=lambda a: (-a[1], a[0])):
        if left <= ZERO:
            break
        take = min(balance, left)
        if take > ZERO:
            drawn.append((psn_no, take))
            left -= take
    return own, drawn
