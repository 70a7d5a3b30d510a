"""The ledger state machine: applies events in order to in-memory state and answers each with a result.

It owns everything a settlement touches (people, account balances, institutions, disease filings,
year-to-date totals, settlements and the results already given). It is deterministic and does no
I/O: the offline CLI and the streaming ledger agent drive the same `Ledger.apply`.

Effectively-once: a request id (`msgid`) that changed state is remembered with its result; the
same request again gets the same result and changes nothing; a different request under a used
`msgid` is refused. Refused requests change nothing and are not remembered, so a corrected resend
is judged afresh.

Answers are kept for a window of event time (`answer_days`, 400 by default: a natural year and the
claim period after it): per person, the answer to a settlement or a claim whose event date (setl_time,
claim_date) is more than `answer_days` before the latest such date of that person seen so far gives
up its result and keeps only its fingerprint. (Answers to reference data, filings, bindings, credits
and cancels are few per person and kept.)
The same request sent again then is refused ANSWER_EXPIRED (never settled twice; the archive holds
the result), and a settlement whose answer expired can no longer be cancelled (its amounts went with
the result). Per person, so that the offline ledger and every partitioning expire the same answers.

A msgid is unique per person (the person a request is about; institution records share one scope
of their own): the streaming service keeps each person's state on one partition and cannot see
the other partitions' msgids, so this ledger, which the offline CLI drives over everyone, keeps the
same scope and gives byte-identical results. Two people's requests under one msgid are two
requests; what they create gets ids that cannot collide (`processors.ids`).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from schemas.models import (
    CANCEL_OF,
    AccountBindingEvent,
    AccountContributionEvent,
    AccountCreditEvent,
    AccountQueryEvent,
    AccumulatorEvent,
    CancelRequest,
    DiseaseFilingEvent,
    InstitutionData,
    InstitutionEvent,
    ManualClaimEvent,
    PersonData,
    PersonEvent,
    RemoteFilingEvent,
    SettlementInput,
    SettlementRequest,
    psn_no_of,
)
from schemas.serde import encode

from .account import monthly_credit
from .accumulators import EMPTY, Accumulators, Delta
from .family_account import Binding, authorizers_on
from .exceptions import SettlementRefused
from .fees import split_bill
from .ids import settlement_id
from .money import FEN, ZERO
from .policy import PolicyBook
from .remote_care import Filing, check_outpatient_disease, decide, filed_place, filing_end, summary
from . import regions
from .manual_claim import check_materials, claim_block
from .settlement import MONEY_FIELDS, Outcome, Registration, settle


@dataclass(frozen=True, slots=True)
class Movement:
    """One line of an account's history: what changed its balance, when, and the balance after."""

    day: str  # yyyy-MM-dd: the settlement's date (a restore: the cancelled one's), the credited month's first day;
    # "" for a balance set, which has no date of its own
    kind: str  # set (opening balance or a person record stating one), credit, debit, mulaid (drawn for a
    # family member's settlement), restore (a cancel gave it back), contrib (a contribution paid)
    amount: Decimal  # signed: credits and restores add, debits subtract; a set gives the new balance
    ref: str  # setl_id of the debit or of the cancel that restored it, the credited month, or the msgid
    balc: Decimal


@dataclass(slots=True)
class Settled:
    msgid: str
    infno: str
    psn_no: str
    fixmedins_code: str
    year: int
    delta: Delta
    acct_pay: Decimal
    treated: str  # where (mdtrtarea_admvs) and where insured (insuplc_admdvs): the clearing pair
    insured: str
    drawn: tuple[tuple[str, Decimal], ...] = ()  # family mutual aid: (authorizer, amount)
    cancelled_by: str | None = None


ANSWER_DAYS = 400


@dataclass(slots=True)
class Recent:
    """One person's answers still holding their results, oldest first, and their latest event date."""

    latest: dt.date
    answers: deque = field(default_factory=deque)  # (event date, msgid)
    cutoff: dt.date = dt.date.min  # answers dated before it expire: latest - the window


def _event_day(event) -> dt.date | None:
    if isinstance(event, ManualClaimEvent):
        return event.input.claim.claim_date
    if isinstance(event, SettlementRequest):
        return event.input.data.setl_time.date()
    return None


def _freeze(doc: dict) -> bytes:
    """Results are kept as their JSON bytes: a tenth of the memory of the dicts, and thawing them
    gives back equal values (Decimals exact, key order kept), so a re-emitted result is identical.
    The copy matters: orjson's bytes keep a 16 KiB allocation whatever their length."""
    return bytes(memoryview(encode(doc)))


def _encoded(result: dict) -> tuple[dict, bytes]:
    return result, encode(result)


def _thaw(data: bytes) -> dict:
    return json.loads(data, parse_float=Decimal)


def _digest(event) -> bytes:
    """Two requests under one msgid are the same request when their validated content is."""
    return hashlib.blake2b(event.model_dump_json().encode(), digest_size=16).digest()


def ok(event, output: Any, warn_msg: str | None = None) -> dict:
    return {"infno": event.infno, "inf_refmsgid": event.msgid, "infcode": 0, "err_msg": None,
            "warn_msg": warn_msg, "output": output}


def error(infno: str | None, msgid: str | None, code: str, reason: str) -> dict:
    return {"infno": infno, "inf_refmsgid": msgid, "infcode": -1, "err_msg": f"{code}: {reason}",
            "warn_msg": None, "output": None}


class Ledger:
    def __init__(self, book: PolicyBook, answer_days: int | None = ANSWER_DAYS) -> None:
        self.book = book
        self.answer_days = answer_days or None  # 0 or None: every answer is kept
        self.persons: dict[str, PersonData] = {}
        self.balances: dict[str, Decimal] = {}
        self.institutions: dict[str, InstitutionData] = {}
        self.registrations: dict[str, dict[str, Registration]] = {}
        self.ytd: dict[str, dict[int, Accumulators]] = {}  # psn_no -> natural year -> totals
        self.settlements: dict[str, Settled] = {}  # setl_id -> record
        self.by_msgid: dict[tuple[str, str], str] = {}  # (psn_no, settlement msgid) -> setl_id
        # (psn_no, or None for institutions, msgid) -> (infno, digest, frozen result, or None once expired)
        self.answered: dict[tuple[str | None, str], tuple[str, bytes, bytes | None]] = {}
        self.recent: dict[str, Recent] = {}  # psn_no -> answers within the window
        self.history: dict[str, list[Movement]] = {}  # psn_no -> account movements, oldest first
        self.credited: set[tuple[str, str]] = set()  # (psn_no, yyyy-MM) months already credited
        self.bindings: dict[str, list[Binding]] = {}  # user psn_no -> their bindings, oldest first
        self.filings: dict[str, list[Filing]] = {}  # psn_no -> remote-care filings (异地就医备案), oldest first

    def apply(self, event) -> dict:
        """Apply one validated event (a schemas.models Event) and return its result envelope."""
        return self.answer(event)[0]

    def answer(self, event) -> tuple[dict, bytes]:
        """`apply`, and the result as JSON bytes (`schemas.serde.encode` of it): a result is encoded
        once, for the memory of answered msgids and for the wire alike, and a re-sent request is
        answered with the very bytes of the first answer."""
        key = (psn_no_of(event), event.msgid)
        seen = self.answered.get(key)
        if seen is not None:
            infno, digest, frozen = seen
            if digest != _digest(event):
                return _encoded(error(event.infno, event.msgid, "MSGID_REUSED",
                                      f"msgid {event.msgid} was already used by a different {infno} request"))
            if frozen is None:
                return _encoded(error(event.infno, event.msgid, "ANSWER_EXPIRED",
                                      f"msgid {event.msgid} was answered more than {self.answer_days} days (of event "
                                      "time) before this person's latest event: the answer is no longer held here, "
                                      "only that it was given (the audit archive holds it); it is not settled again"))
            return _thaw(frozen), frozen
        try:
            result = self._dispatch(event)
        except SettlementRefused as e:
            return _encoded(error(event.infno, event.msgid, e.code, e.reason))
        frozen = _freeze(result)
        if not isinstance(event, AccountQueryEvent):  # a query changes nothing: asked again, answered afresh
            self.answered[key] = (event.infno, _digest(event), frozen)
            day = _event_day(event) if self.answer_days is not None else None
            if day is not None:
                self._remember(key[0], event.msgid, day)
        return result, frozen

    def _remember(self, psn_no: str, msgid: str, day: dt.date) -> None:
        """Note the answer's event date; expire this person's answers that fell out of the window."""
        recent = self.recent.get(psn_no)
        if recent is None:
            recent = self.recent[psn_no] = Recent(day, cutoff=day - dt.timedelta(days=self.answer_days))
        elif day > recent.latest:
            recent.latest, recent.cutoff = day, day - dt.timedelta(days=self.answer_days)
        recent.answers.append((day, msgid))
        while recent.answers and recent.answers[0][0] < recent.cutoff:
            _, old = recent.answers.popleft()
            infno, digest, _ = self.answered[psn_no, old]
            self.answered[psn_no, old] = (infno, digest, None)

    def _dispatch(self, event) -> dict:
        if isinstance(event, SettlementRequest):
            return self._settle(event)
        if isinstance(event, CancelRequest):
            return self._cancel(event)
        if isinstance(event, PersonEvent):
            return self._person(event)
        if isinstance(event, InstitutionEvent):
            self.institutions[event.input.fixmedins_code] = event.input
            return ok(event, {"fixmedins_code": event.input.fixmedins_code})
        if isinstance(event, DiseaseFilingEvent):
            return self._filing(event)
        if isinstance(event, AccumulatorEvent):
            return self._import(event)
        if isinstance(event, AccountCreditEvent):
            return self._credit(event)
        if isinstance(event, AccountQueryEvent):
            return ok(event, self.account(event.input.psn_no))
        if isinstance(event, AccountBindingEvent):
            return self._bind(event) if event.infno == "acct_bind" else self._unbind(event)
        if isinstance(event, AccountContributionEvent):
            return self._contribute(event)
        if isinstance(event, RemoteFilingEvent):
            return self._remote_filing(event) if event.infno == "remote_filing" else self._remote_unfiling(event)
        if isinstance(event, ManualClaimEvent):
            return self._claim(event)
        raise TypeError(f"not an event: {type(event).__name__}")

    # -- reference data -----------------------------------------------------------------------

    def _person(self, event: PersonEvent) -> dict:
        p = event.input
        self.book.region_of(p.insuplc_admdvs)  # refuse people no policy covers
        self.persons[p.psn_no] = p
        if p.balc is not None or p.psn_no not in self.balances:
            self.balances[p.psn_no] = p.balc if p.balc is not None else ZERO
        if p.balc is not None:  # the opening balance at go-live, or a correction by the agency
            self._move(p.psn_no, "", "set", p.balc, event.msgid)
        return ok(event, {"psn_no": p.psn_no, "balc": self.balances[p.psn_no].quantize(FEN)})

    def _filing(self, event: DiseaseFilingEvent) -> dict:
        d = event.input
        person = self._person_of(d.psn_no)
        policy = self.book.select(person.insuplc_admdvs, d.begndate or d.enddate or _any_day(self.book, person))
        disease = policy.chronic_disease(d.opsp_dise_code) or policy.special_disease(d.opsp_dise_code)
        if disease is None:
            raise SettlementRefused("UNKNOWN_DISEASE",
                                    f"{d.opsp_dise_code} is neither a chronic nor a special disease of {policy.id}")
        filings = self.registrations.setdefault(d.psn_no, {})
        if event.infno == "2503":
            kind = "chronic" if policy.chronic_disease(disease.code) else "special"
            filings[disease.code] = Registration(disease.code, kind, d.begndate, d.enddate)
        else:
            if disease.code not in filings:
                raise SettlementRefused("NOT_FILED", f"{disease.code} is not filed for this person")
            del filings[disease.code]
        return ok(event, {"psn_no": d.psn_no, "opsp_dise_code": disease.code, "opsp_dise_name": disease.name})

    def _import(self, event: AccumulatorEvent) -> dict:
        d = event.input
        self._person_of(d.psn_no)
        delta = {k: v for k, v in d.model_dump(exclude={"psn_no", "year"}).items() if v}
        if d.art_claimed:
            delta["art_claimed"] = 1
        years = self.ytd.setdefault(d.psn_no, {})
        years[d.year] = years.get(d.year, EMPTY).plus(delta)
        return ok(event, {"psn_no": d.psn_no, "year": d.year, "totals": _totals(years[d.year])})

    def _credit(self, event: AccountCreditEvent) -> dict:
        d = event.input
        person = self._person_of(d.psn_no)
        if (d.psn_no, d.month) in self.credited:
            raise SettlementRefused("ALREADY_CREDITED", f"the account was already credited for {d.month}")
        first = dt.date.fromisoformat(f"{d.month}-01")
        policy = self.book.select(person.insuplc_admdvs, first)
        policy.require_money("personal-account rules")
        credit = monthly_credit(policy, person, first, d.contrib_base)
        self.credited.add((d.psn_no, d.month))
        self.balances[d.psn_no] += credit.to_account
        self._move(d.psn_no, first.isoformat(), "credit", credit.to_account, d.month)
        # key order as in settle_result.avsc's AckOutput, so the Avro twin reads back the same JSON
        return ok(event, {"psn_no": d.psn_no, "balc": self.balances[d.psn_no].quantize(FEN), "month": d.month,
                          "acct_credit": credit.to_account, "ltc_credit": credit.to_ltc},
                  credit.warn_msg)

    def _bind(self, event: AccountBindingEvent) -> dict:
        d = event.input
        self._person_of(d.psn_no)
        auth = self.persons.get(d.auth_psn_no)
        if auth is None:
            raise SettlementRefused("UNKNOWN_AUTHORIZER", "the authorizer is unknown: send their person record first")
        policy = self.book.select(auth.insuplc_admdvs, d.begndate)
        policy.require_money("personal-account rules")
        if not auth.insuplc_admdvs.startswith(policy.account.authorizer_insured_in):
            raise SettlementRefused("AUTHORIZER_NOT_IN_PROVINCE", f"an authorizer must be an employee insured in "
                                    f"{'/'.join(policy.account.authorizer_insured_in)}; this one is insured in "
                                    f"{auth.insuplc_admdvs}")
        later = [p for p in self.book.policies if p.region == policy.region
                 and (p.effective_until is None or p.effective_until > d.begndate)]
        if not any(d.relation in p.account.binding_relations for p in later):
            raise SettlementRefused("RELATION_NOT_PERMITTED", f"{d.relation} is not a relation any rule set from "
                                    f"{d.begndate} permits ({'; '.join(f'{p.id}: ' + ', '.join(sorted(p.account.binding_relations)) for p in later)})")
        mine = self.bindings.setdefault(d.psn_no, [])
        current = next((b for b in mine if b.auth_psn_no == d.auth_psn_no and b.enddate is None), None)
        if current is None:
            mine.append(Binding(d.auth_psn_no, d.relation, d.begndate))
        elif (current.relation, current.begndate) != (d.relation, d.begndate):
            raise SettlementRefused("ALREADY_BOUND", f"already bound as {current.relation} since {current.begndate}: "
                                    "unbind first to change it")
        return ok(event, {"psn_no": d.psn_no, "auth_psn_no": d.auth_psn_no, "relation": d.relation,
                          "begndate": d.begndate.isoformat()})

    def _unbind(self, event: AccountBindingEvent) -> dict:
        d = event.input
        mine = self.bindings.get(d.psn_no, [])
        for i, b in enumerate(mine):
            if b.auth_psn_no == d.auth_psn_no and b.enddate is None:
                if d.enddate < b.begndate:
                    raise SettlementRefused("UNBIND_BEFORE_BIND", f"the binding starts on {b.begndate}, after {d.enddate}")
                mine[i] = Binding(b.auth_psn_no, b.relation, b.begndate, d.enddate)
                return ok(event, {"psn_no": d.psn_no, "auth_psn_no": d.auth_psn_no, "relation": b.relation,
                                  "begndate": b.begndate.isoformat(), "enddate": d.enddate.isoformat()})
        raise SettlementRefused("NOT_BOUND", "no binding in force between this user and this authorizer")

    def _contribute(self, event: AccountContributionEvent) -> dict:
        """The account pays an individual contribution, down to 0; the rest is paid otherwise. Only the
        holder's account pays: a contribution draws on no one else's."""
        d = event.input
        person = self._person_of(d.psn_no)
        policy = self.book.select(person.insuplc_admdvs, d.pay_date)
        policy.require_money("personal-account rules")
        if d.insutype not in policy.account.contribution_insutypes:
            raise SettlementRefused("NOT_PAYABLE", f"{policy.id} does not let the account pay contributions to "
                                    f"{d.insutype}; it pays {', '.join(sorted(policy.account.contribution_insutypes))}")
        if d.relation is not None and d.relation not in policy.account.binding_relations:
            raise SettlementRefused("RELATION_NOT_PERMITTED", f"{d.relation} is not a relative whose contribution "
                                    f"{policy.id} lets the account pay ({', '.join(sorted(policy.account.binding_relations))})")
        paid = min(self.balances[d.psn_no], d.cntr_amt)
        self.balances[d.psn_no] -= paid
        self._move(d.psn_no, d.pay_date.isoformat(), "contrib", -paid, event.msgid)
        # key order as in settle_result.avsc's AckOutput, so the Avro twin reads back the same JSON
        return ok(event, {"psn_no": d.psn_no, "balc": self.balances[d.psn_no].quantize(FEN), "year": d.year,
                          "relation": d.relation, "cntr_psn_no": d.cntr_psn_no or d.psn_no, "insutype": d.insutype,
                          "cntr_amt": d.cntr_amt, "acct_pay": paid.quantize(FEN),
                          "psn_cash_pay": (d.cntr_amt - paid).quantize(FEN)})

    def _remote_filing(self, event: RemoteFilingEvent) -> dict:
        d = event.input
        person = self._person_of(d.psn_no)
        policy = self.book.select(person.insuplc_admdvs, d.begndate)
        if d.filing_type not in policy.remote_care.filing_types:
            raise SettlementRefused("BAD_FILING", f"{policy.id} has no filing type {d.filing_type}")
        if not regions.known(d.admdvs):
            raise SettlementRefused("UNKNOWN_REGION", f"admdvs {d.admdvs} is not a GB/T 2260 region code "
                                    f"(table of {regions.DATA_AS_OF})")
        place = filed_place(policy, d.admdvs)
        if place[:2] == person.insuplc_admdvs[:2] and not policy.remote_care.in_province_filing_required:
            raise SettlementRefused("NOT_NEEDED", f"{regions.name(place)} is in the insured province: care there needs "
                                    "no filing (seed 004: 省内异地就医免备案)")
        filing = Filing(d.filing_type, place, d.begndate, filing_end(policy, d.filing_type, d.begndate, d.enddate))
        mine = self.filings.setdefault(d.psn_no, [])
        if filing not in mine:  # the same filing again changes nothing
            mine.append(filing)
        return ok(event, _filing_out(d.psn_no, filing))

    def _remote_unfiling(self, event: RemoteFilingEvent) -> dict:
        d = event.input
        mine = self.filings.get(d.psn_no, [])
        for i, f in enumerate(mine):
            if f.covers(d.admdvs) and f.in_force(d.enddate - dt.timedelta(days=1)):
                mine[i] = Filing(f.filing_type, f.admdvs, f.begndate, d.enddate)
                return ok(event, _filing_out(d.psn_no, mine[i]))
        raise SettlementRefused("NOT_FILED", f"no remote-care filing for {d.admdvs} is in force before {d.enddate}")

    def _move(self, psn_no: str, day: str, kind: str, amount: Decimal, ref: str) -> None:
        if amount or kind == "set":
            self.history.setdefault(psn_no, []).append(
                Movement(day, kind, amount.quantize(FEN), ref, self.balances[psn_no].quantize(FEN)))

    # -- settlement and cancel ----------------------------------------------------------------

    def _settle(self, req: SettlementRequest) -> dict:
        data = req.input.data
        person = self._person_of(data.psn_no)
        institution = self.institutions.get(req.fixmedins_code)
        if institution is None:
            raise SettlementRefused("UNKNOWN_INSTITUTION",
                                    f"institution {req.fixmedins_code} is unknown: send its institution record first")
        day = data.setl_time.date()
        policy = self.book.select(person.insuplc_admdvs, day)
        rx_level = data.rx_hosp_lv
        if rx_level is None and data.rx_fixmedins_code in self.institutions:
            rx_level = self.institutions[data.rx_fixmedins_code].hosp_lv
        treated = req.mdtrtarea_admvs or institution.admdvs
        remote = decide(policy, person.insuplc_admdvs, treated, day, self.filings.get(data.psn_no, []),
                        data.emergency_flag == "1")
        if remote and remote["scope"] == "cross_province" and policy.med_types.get(data.med_type) == "chronic_special_outpatient":
            registered = {r.code for r in self.registrations.get(data.psn_no, {}).values() if r.active_on(day)}
            check_outpatient_disease(policy, data.dise_codg, registered, day, remote)
        catalog = self._catalog(policy, remote, treated, day)
        if not policy.settles:
            raise SettlementRefused("NO_MONEY_POLICY", _without_money(
                policy, person.insuplc_admdvs, summary(remote, person.insuplc_admdvs, treated), req, catalog))
        outcome = self._book(req, req.infno, person, institution, rx_level, policy, treated, catalog)
        if remote is not None:
            outcome.output["remote"] = remote
        return ok(req, outcome.output, outcome.warn_msg)

    def _claim(self, event: ManualClaimEvent) -> dict:
        """零星报销: settled as if direct, under the insured place's rules and the treatment place's
        catalogue, without a filing (the claim is the remedy for care not settled directly), paid to
        the claimant: the account is not debited. Not cleared with the institution: the agency pays."""
        data, claim = event.input.data, event.input.claim
        person = self._person_of(data.psn_no)
        day = data.setl_time.date()
        policy = self.book.select(person.insuplc_admdvs, day)
        policy.require_money("manual-claim rules")
        benefit = policy.med_types.get(data.med_type)
        check_materials(policy.manual_claim, benefit, data.med_type, data.emergency_flag == "1",
                          claim.accident_flag == "1", claim.materials)
        treated = event.mdtrtarea_admvs
        remote = decide(policy, person.insuplc_admdvs, treated, day, self.filings.get(data.psn_no, []),
                        data.emergency_flag == "1", claimed=True)
        pharmacy = benefit == "pharmacy"
        institution = InstitutionData(fixmedins_code=event.fixmedins_code, fixmedins_type="2" if pharmacy else "1",
                                      hosp_lv=None if pharmacy else claim.hosp_lv, admdvs=treated, day_surgery=True,
                                      matn=True)
        req = SettlementRequest.model_construct(
            infno="2102" if pharmacy else "2304" if benefit == "inpatient" else "2207", msgid=event.msgid,
            fixmedins_code=event.fixmedins_code, mdtrtarea_admvs=treated,
            input=SettlementInput.model_construct(data=data.model_copy(update={"acct_used_flag": "0"}),
                                                  feedetail=event.input.feedetail))
        catalog = self._catalog(policy, remote, treated, day)
        outcome = self._book(req, event.infno, person, institution, data.rx_hosp_lv, policy, treated, catalog)
        if remote is not None:
            outcome.output["remote"] = remote
        outcome.output["claim"] = claim_block(policy.manual_claim, claim.claim_date)
        return ok(event, outcome.output, outcome.warn_msg)

    def _catalog(self, policy, remote: dict | None, treated: str, day: dt.date):
        """就医地目录: the treatment place's catalogue data (None where yibao holds none); at home the
        insured place's, without a lookup."""
        return policy.catalog if remote is None else self.book.catalog_at(treated, day)

    def _book(self, req: SettlementRequest, infno: str, person: PersonData, institution: InstitutionData,
              rx_level: int | None, policy, treated: str, catalog) -> Outcome:
        """Settle and book: the year's totals, the debits (own account, then family), the record."""
        data = req.input.data
        year = data.setl_time.year
        years = self.ytd.setdefault(data.psn_no, {})
        outcome = settle(
            req, person, self.balances[data.psn_no], institution, rx_level, policy,
            years.get(year, EMPTY), list(self.registrations.get(data.psn_no, {}).values()),
            any(acc.art_claimed for acc in years.values()),
            self._authorizers(data.psn_no, data.setl_time.date(), policy), catalog,
        )
        years[year] = years.get(year, EMPTY).plus(outcome.delta)
        self.balances[data.psn_no] -= outcome.acct_pay
        setl_id = outcome.output["setlinfo"]["setl_id"]
        day = data.setl_time.date().isoformat()
        self._move(data.psn_no, day, "debit", -outcome.acct_pay, setl_id)
        for auth, amount in outcome.drawn:  # one state change with the user's debit: the same apply
            self.balances[auth] -= amount
            self._move(auth, day, "mulaid", -amount, setl_id)
        self.settlements[setl_id] = Settled(req.msgid, infno, data.psn_no, req.fixmedins_code, year,
                                            outcome.delta, outcome.acct_pay, treated, person.insuplc_admdvs,
                                            outcome.drawn)
        self.by_msgid[data.psn_no, req.msgid] = setl_id
        return outcome

    def _cancel(self, req: CancelRequest) -> dict:
        d = req.input.data
        setl_id = d.setl_id or self.by_msgid.get((d.psn_no, d.omsgid))
        record = self.settlements.get(setl_id) if setl_id else None
        if record is None or record.psn_no != d.psn_no:
            raise SettlementRefused("UNKNOWN_SETTLEMENT",
                                    f"no settlement {d.setl_id or d.omsgid} of this person to cancel")
        original = d.oinfno if req.infno == "2601" else CANCEL_OF[req.infno]
        if record.infno != original:
            raise SettlementRefused("WRONG_INFNO", f"settlement {setl_id} was made by {record.infno}, "
                                    f"{req.infno} cancels {original}")
        if req.fixmedins_code is not None and req.fixmedins_code != record.fixmedins_code:
            raise SettlementRefused("WRONG_INSTITUTION", f"settlement {setl_id} belongs to another institution; "
                                    "only the institution that settled it can cancel it")
        if record.cancelled_by is not None:
            raise SettlementRefused("ALREADY_CANCELLED", f"settlement {setl_id} was cancelled by msgid {record.cancelled_by}")
        answer = self.answered[record.psn_no, record.msgid][2]
        if answer is None:
            raise SettlementRefused("ANSWER_EXPIRED", f"settlement {setl_id} is more than {self.answer_days} days "
                                    "(of event time) older than this person's latest event: its answer, with the "
                                    "amounts to reverse, is no longer held, so it cannot be cancelled here")
        years = self.ytd[record.psn_no]
        years[record.year] = years[record.year].plus(record.delta, sign=-1)
        self.balances[record.psn_no] += record.acct_pay
        record.cancelled_by = req.msgid
        output = _thaw(answer)["output"]
        info = output["setlinfo"]
        for name in MONEY_FIELDS:
            if name != "balc":
                info[name] = -info[name]
        info["balc"] = self.balances[record.psn_no].quantize(FEN)
        info["setl_id"] = settlement_id("C", d.psn_no, req.msgid)
        self._move(record.psn_no, info["setl_time"][:10], "restore", record.acct_pay, info["setl_id"])
        for auth, amount in record.drawn:
            self.balances[auth] += amount
            self._move(auth, info["setl_time"][:10], "restore", amount, info["setl_id"])
        if record.drawn:
            info["acct_pay_detl"] = [{"psn_no": auth, "acct_pay": -amount.quantize(FEN), "balc": self.balances[auth].quantize(FEN)}
                                     for auth, amount in record.drawn]
        info["init_setl_id"] = setl_id
        info["medins_setl_id"] = req.msgid
        info.pop("setl_proc_info")
        detail = [dict(row, inscp_scp_amt=-row["inscp_scp_amt"], fund_payamt=-row["fund_payamt"])
                  for row in output["setldetail"]]
        return ok(req, {"setlinfo": info, "setldetail": detail})

    def places(self, setl_id: str) -> tuple[str, str]:
        """(treatment place, insured place) of a settlement: its clearing pair. A cancel's are its
        original's (`init_setl_id`)."""
        record = self.settlements[setl_id]
        return record.treated, record.insured

    def _authorizers(self, psn_no: str, day: dt.date, policy) -> list[tuple[str, Decimal]]:
        """(psn_no, balance) of the authorizers who may pay for this person on `day`."""
        bindings = self.bindings.get(psn_no)
        if not bindings:
            return []
        return [(a, self.balances[a]) for a in authorizers_on(bindings, day, policy) if a in self.balances]

    def _person_of(self, psn_no: str) -> PersonData:
        person = self.persons.get(psn_no)
        if person is None:
            raise SettlementRefused("UNKNOWN_PERSON", "person is unknown: send the person record first")
        return person

    # -- hand-over: a group of people moves to another partition --------------------------------

    def export_people(self, psn_nos: Iterable[str]) -> bytes:
        """Remove every piece of state that belongs to these persons and return it as deterministic
        JSON: per person, in the order given, {"psn_no", then what they hold of each `_OWN`, `_OWNED`
        attribute and "credited"}. Institutions stay: every partition has them."""
        people = {p: {"psn_no": p} for p in dict.fromkeys(psn_nos)}
        for p, out in people.items():
            for attr, (to_json, _) in _OWN.items():
                if p in (held := getattr(self, attr)):
                    out[attr] = to_json(held.pop(p))
        for attr, (to_json, _, by_person) in _OWNED.items():
            held = getattr(self, attr)
            for key in [k for k, v in held.items() if (k[0] if by_person else v.psn_no) in people]:
                value = held.pop(key)
                owner, sub = key if by_person else (value.psn_no, key)
                people[owner].setdefault(attr, {})[sub] = to_json(value)
        for p, month in sorted(c for c in self.credited if c[0] in people):  # a set: sorted, for the same bytes
            self.credited.remove((p, month))
            people[p].setdefault("credited", []).append(month)
        return encode(list(people.values()))

    def import_people(self, data: bytes) -> list[str]:
        """Add state exported by `export_people` (after what is here); return the persons' psn_no in
        export order. ValueError, and nothing added, if any of them already has state here."""
        order, staged = [], []  # staged: (psn_no, attribute, key, value)
        for entry in _thaw(data):
            p = entry.pop("psn_no")
            order.append(p)
            staged += [(p, "credited", (p, month), None) for month in entry.pop("credited", [])]
            for attr, doc in entry.items():
                if attr in _OWN:
                    staged.append((p, attr, p, _OWN[attr][1](doc)))
                else:
                    _, from_json, by_person = _OWNED[attr]
                    staged += [(p, attr, (p, sub) if by_person else sub, from_json(v)) for sub, v in doc.items()]
        taken = {p for p in order if any(p in getattr(self, attr) for attr in _OWN)}
        taken |= {p for p, attr, key, _ in staged if key in getattr(self, attr)}
        if taken:
            raise ValueError(f"state of {', '.join(sorted(taken))} is already here: not imported")
        for _, attr, key, value in staged:
            if attr == "credited":
                self.credited.add(key)
            else:
                getattr(self, attr)[key] = value
        return order

    # -- views for tests, replay checks and the CLI summary ------------------------------------

    def totals(self, psn_no: str, year: int) -> dict:
        return _totals(self.ytd.get(psn_no, {}).get(year, EMPTY))

    def account(self, psn_no: str) -> dict:
        """What `yibao account` shows: the balance, the account's movements, the year-to-date totals."""
        self._person_of(psn_no)
        return {
            "psn_no": psn_no,
            "balc": self.balances[psn_no].quantize(FEN),
            "bindings": [_binding({"auth_psn_no": b.auth_psn_no}, b) for b in self.bindings.get(psn_no, [])],
            "authorizes": [_binding({"psn_no": user}, b) for user, mine in sorted(self.bindings.items())
                           for b in mine if b.auth_psn_no == psn_no],
            "history": [{"day": m.day, "kind": m.kind, "amount": m.amount, "ref": m.ref, "balc": m.balc}
                        for m in self.history.get(psn_no, [])],
            "totals": [{"year": y, **_totals(a)} for y, a in sorted(self.ytd.get(psn_no, {}).items())],
        }

    def snapshot(self) -> dict:
        """The money state (account balances and year-to-date totals) as plain data, for equality
        checks: a settlement followed by its cancel leaves it exactly as it was."""
        return {
            "balances": dict(sorted(self.balances.items())),
            "ytd": {f"{p}/{y}": _totals(a) for p, years in sorted(self.ytd.items())
                    for y, a in sorted(years.items()) if a != EMPTY},
        }


def _without_money(policy, insured: str, decided: str, req: SettlementRequest, catalog) -> str:
    """Why a settlement of a region without money data is refused: what was decided, the bill under
    the treatment place's catalogue (where yibao holds it), and what is missing."""
    split = ""
    if catalog is not None:
        bill = split_bill(req.input.feedetail, catalog, frozenset(), [])
        split = " The bill under the treatment place's catalogue: " + ", ".join(
            f"{k} {getattr(bill, k).quantize(FEN)}" for k in
            ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt")) + "."
    return (f"{decided}.{split} Not settled: policy data for {policy.region} ({insured[:2]}xxxx, {policy.id}) has no "
            "deductible, ratio or cap (the seeds give its remote-care rules only)")


def _filing_out(psn_no: str, f: Filing) -> dict:
    """A filing as its result shows it, keys in settle_result.avsc's AckOutput order."""
    out = {"psn_no": psn_no, "begndate": f.begndate.isoformat()}
    if f.enddate is not None:
        out["enddate"] = f.enddate.isoformat()
    return {**out, "filing_type": f.filing_type, "admdvs": f.admdvs, "admdvs_name": regions.name(f.admdvs)}


def _binding(who: dict, b: Binding) -> dict:
    """A binding as the account view shows it; `enddate` only once it is unbound."""
    out = {**who, "relation": b.relation, "begndate": b.begndate.isoformat()}
    if b.enddate is not None:
        out["enddate"] = b.enddate.isoformat()
    return out


def _totals(acc: Accumulators) -> dict:
    return {k: (v.quantize(FEN) if isinstance(v, Decimal) else v) for k, v in acc.as_dict().items()}


def _any_day(book: PolicyBook, person: PersonData):
    region = book.region_of(person.insuplc_admdvs)
    return max(p.effective_from for p in book.policies if p.region == region)


# -- hand-over encoding: dataclasses as lists of their fields, read back field by field --------


def _row(obj) -> list:
    """A dataclass as the list of its fields, for `encode` (dates as ISO, Decimals as exact numbers)."""
    return [getattr(obj, f.name) for f in fields(obj)]


def _read(cls, row: list):
    """The dataclass `_row` wrote, each field converted back by `_READERS[cls]`."""
    return cls(*(read(v) for read, v in zip(_READERS[cls], row, strict=True)))


def _same(value):
    return value


def _day(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def _amounts(doc: dict) -> dict:
    """Accumulator fields as Accumulators holds them: Decimal (JSON gives 5 for Decimal('5')), or int for counts."""
    return {name: type(getattr(EMPTY, name))(v) for name, v in doc.items()}


def _rows(cls) -> tuple[Callable, Callable]:
    return (lambda items: [_row(x) for x in items], lambda rows: [_read(cls, r) for r in rows])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


_READERS = {
    Registration: (_same, _same, _day, _day),
    Binding: (_same, _same, _day, _day),
    Filing: (_same, _same, _day, _day),
    Movement: (_same, _same, Decimal, _same, Decimal),
    Settled: (_same, _same, _same, _same, _same, _amounts, Decimal, _same, _same,
              lambda drawn: tuple((psn_no, Decimal(amount)) for psn_no, amount in drawn), _same),
}
_OWN: dict[str, tuple[Callable, Callable]] = {  # attributes keyed by psn_no: (to JSON, from JSON)
    "persons": (lambda p: p.model_dump(mode="json", exclude_unset=True), PersonData.model_validate),
    "balances": (_same, Decimal),
    "registrations": (lambda regs: {code: _row(r) for code, r in regs.items()},
                      lambda doc: {code: _read(Registration, r) for code, r in doc.items()}),
    "ytd": (lambda years: [[year, acc.as_dict()] for year, acc in years.items()],
            lambda doc: {year: Accumulators(**_amounts(acc)) for year, acc in doc}),  # JSON keys are text
    "history": _rows(Movement),
    "bindings": _rows(Binding),
    "filings": _rows(Filing),
    "recent": (lambda r: [r.latest.isoformat(), [[d.isoformat(), m] for d, m in r.answers], r.cutoff.isoformat()],
               lambda doc: Recent(dt.date.fromisoformat(doc[0]), deque((dt.date.fromisoformat(d), m) for d, m in doc[1]),
                                  dt.date.fromisoformat(doc[2]))),
}
_OWNED: dict[str, tuple[Callable, Callable, bool]] = {  # (to JSON, from JSON, keyed by (psn_no, msgid))
    "settlements": (_row, lambda row: _read(Settled, row), False),  # keyed by setl_id, owned by Settled.psn_no
    "by_msgid": (_same, _same, True),
    "answered": (lambda a: [a[0], _b64(a[1]), a[2] and _b64(a[2])],
                 lambda a: (a[0], _unb64(a[1]), a[2] and _unb64(a[2])), True),
}
