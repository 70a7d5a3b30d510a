"""Policies as data: load the dated, sourced parameter files of each region and validate them.

A region is a directory under `processors/policies/` holding `region.yaml` (who it covers, its rule
sets, its med_type codes) and one YAML file per benefit area. Every parameter lists its values by
effective date, each with the seed file and the quoted passage it comes from (OpenFisca style).
`load_policies()` materialises one frozen `Policy` per rule set, the values in force on the day the
rule set starts, and stops with the file, key and reason when anything is missing or inconsistent.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.models import ContributionInsutype, FeeCategory, FilingType, Material, Relation

from .exceptions import PolicyError, SettlementRefused

POLICY_ROOT = Path(__file__).with_name("policies")

Benefit = Literal[
    "general_outpatient",
    "emergency_rescue",
    "chronic_special_outpatient",
    "inpatient",
    "day_surgery",
    "pharmacy",
    "maternity",
    "family_planning",
]
Money = Annotated[Decimal, Field(ge=0, decimal_places=2)]
Ratio = Annotated[Decimal, Field(gt=0, le=1)]
Level = Literal[1, 2, 3]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------------------------------------
# The files as written


class Source(_Frozen):
    file: str = Field(pattern=r"^\d{3}_[0-9a-f]{16}\.txt$")
    section: str = Field(min_length=1)
    quote: str = Field(min_length=4)
    reading: str | None = None


class DatedValue(_Frozen):
    value: Any
    source: Source


class Parameter(_Frozen):
    description: str
    unit: Literal["yuan", "ratio", "years", "months", "working_days", "list", "flag"]
    values: dict[dt.date, DatedValue] = Field(min_length=1)

    @field_validator("values", mode="before")
    @classmethod
    def _date_keys_as_text(cls, v: object) -> object:
        # YAML reads the keys as dates already; as text they show plainly in error locations.
        return {str(k): item for k, item in v.items()} if isinstance(v, dict) else v


class ParameterFile(_Frozen):
    description: str
    parameters: dict[str, Parameter]


class RuleSetCard(_Frozen):
    id: str = Field(pattern=r"^[a-z0-9-]+$")
    from_: dt.date = Field(alias="from")
    note: str


class RegionCard(_Frozen):
    region: str
    name: str
    insuplc_admdvs_prefixes: list[str] = Field(min_length=1)
    # False: the seeds give this region's remote-care rules only, no money (deductibles, ratios,
    # caps, catalogue): its directory holds region.yaml and remote_care.yaml, and its people's
    # settlements get the routing decision and are refused NO_MONEY_POLICY rather than invented.
    settles: bool = True
    last_verified: dt.date
    rule_sets: list[RuleSetCard] = Field(min_length=1)
    med_types: dict[str, Benefit]

    @model_validator(mode="after")
    def _ordered(self) -> "RegionCard":
        starts = [r.from_ for r in self.rule_sets]
        if starts != sorted(set(starts)):
            raise ValueError("rule_sets must be listed in strictly increasing 'from' order")
        return self


# ---------------------------------------------------------------------------------------------
# The typed policy one rule set applies


def _by_level(v: dict) -> dict:
    if set(v) != {1, 2, 3}:
        raise ValueError(f"needs exactly the levels 1, 2, 3; got {sorted(v)}")
    return v


class Catalog(_Frozen):
    drug_class_b_preselfpay: Ratio
    negotiated_drug_preselfpay: Ratio
    service_class_b_preselfpay: Ratio
    consumable_class_b_preselfpay: Ratio


class GeneralOutpatient(_Frozen):
    deductible: dict[Level, Money]
    ratio_active: dict[Level, Ratio]
    retiree_ratio_bonus: Annotated[Decimal, Field(ge=0, lt=1)]
    annual_cap: Money

    _levels = field_validator("deductible", "ratio_active")(_by_level)

    @model_validator(mode="after")
    def _retired_within_one(self) -> "GeneralOutpatient":
        for lv, r in self.ratio_active.items():
            if r + self.retiree_ratio_bonus > 1:
                raise ValueError(f"retiree ratio at level {lv} exceeds 100%")
        return self


class Inpatient(_Frozen):
    deductible_by_admission: dict[Literal[1, 2, 3], dict[Level, Money]]
    ratio_active: dict[Level, Ratio]
    ratio_retired: dict[Level, Ratio]
    annual_cap: Money

    _levels = field_validator("ratio_active", "ratio_retired")(_by_level)

    @model_validator(mode="after")
    def _consistent(self) -> "Inpatient":
        d = self.deductible_by_admission
        if set(d) != {1, 2, 3}:
            raise ValueError("deductible_by_admission needs admissions 1, 2 and 3 (third and later)")
        for ordinal in (1, 2, 3):
            _by_level(d[ordinal])
        for lv in (1, 2, 3):
            if not d[1][lv] >= d[2][lv] >= d[3][lv]:
                raise ValueError(f"deductibles must not grow with the admission ordinal (level {lv})")
            if self.ratio_retired[lv] < self.ratio_active[lv]:
                raise ValueError(f"retired ratio below active ratio at level {lv}")
        return self


class SeriousIllness(_Frozen):
    ratio: Ratio


class Elderly(_Frozen):
    age: int = Field(gt=0, lt=150)
    deductible_factor: Ratio
    inpatient_floor_ratio: Ratio


class Disease(_Frozen):
    code: str = Field(pattern=r"^[A-Z0-9]+$")
    name: str

    @property
    def alias(self) -> str | None:
        """The name people use: the seed's name without its bracketed part (类风湿性关节炎 for
        类风湿性关节炎（包括幼年特发性关节炎、幼年性皮肌炎）); None when the name has none."""
        short = re.sub(r"（[^（）]*）$", "", self.name)
        return short if short != self.name else None


def _unique_diseases(v: list[Disease]) -> list[Disease]:
    for attr in ("code", "name"):
        seen = [getattr(d, attr) for d in v]
        if len(seen) != len(set(seen)):
            raise ValueError(f"duplicate disease {attr}")
    keys = [k for d in v for k in (d.code, d.name, d.alias) if k]
    if len(keys) != len(set(keys)):
        raise ValueError("a disease code, name or name without its bracketed part names two diseases")
    return v


class Chronic(_Frozen):
    deductible: Money
    ratio: Ratio
    cap_by_disease_count: dict[int, Money]
    diseases: list[Disease] = Field(min_length=1)

    _unique = field_validator("diseases")(_unique_diseases)

    @field_validator("cap_by_disease_count")
    @classmethod
    def _caps_grow(cls, v: dict[int, Decimal]) -> dict[int, Decimal]:
        counts = sorted(v)
        if counts != list(range(1, len(counts) + 1)):
            raise ValueError("disease counts must be 1, 2, ... without gaps")
        caps = [v[c] for c in counts]
        if caps != sorted(caps):
            raise ValueError("caps must not shrink as diseases are added")
        return v


class Special(_Frozen):
    deductible: Money
    diseases: list[Disease] = Field(min_length=1)

    _unique = field_validator("diseases")(_unique_diseases)


class DaySurgery(_Frozen):
    deductible_factor: Ratio


class Pharmacy(_Frozen):
    general_outpatient_with_eprescription: bool
    dual_channel_chronic_special: bool


class Packages(_Frozen):
    vaginal_delivery: Money
    difficult_delivery: Money
    caesarean: Money
    prenatal_check: Money
    nutrition: Money
    nutrition_per_extra_fetus: Money
    abortion_under_4_months: Money
    abortion_4_to_7_months: Money
    iud_insertion: Money
    iud_removal: Money
    tubal_ligation: Money
    vasectomy: Money
    tubal_recanalization: Money
    vas_recanalization: Money
    implant_insertion: Money
    implant_removal: Money


class TerminationMonths(_Frozen):
    lower: int = Field(gt=0)
    birth: int = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> "TerminationMonths":
        if not self.lower < self.birth:
            raise ValueError("lower must be below birth")
        return self


class Maternity(_Frozen):
    packages: Packages
    termination_months: TerminationMonths
    assisted_reproduction_cap: Money


class ByHardship(_Frozen):
    deep: Ratio
    relative: Ratio


class Assistance(_Frozen):
    deductible_rate: ByHardship
    ratio: ByHardship


class Account(_Frozen):
    active_credit_rate: Ratio
    active_credit_ltc_rate: Annotated[Decimal, Field(ge=0, lt=1)]
    retiree_credit_age: int | None = Field(default=None, gt=0, lt=150)
    retiree_credit_under_age: Money | None
    retiree_credit_from_age: Money | None
    not_payable_categories: frozenset[FeeCategory]
    binding_relations: frozenset[Relation]
    authorizer_insured_in: tuple[Annotated[str, Field(pattern=r"^\d{2,6}$")], ...] = Field(min_length=1)
    contribution_insutypes: frozenset[ContributionInsutype]

    @model_validator(mode="after")
    def _consistent(self) -> "Account":
        if self.active_credit_ltc_rate >= self.active_credit_rate:
            raise ValueError("the long-term-care share must be below the whole credit rate")
        given = [v is not None for v in (self.retiree_credit_age, self.retiree_credit_under_age,
                                          self.retiree_credit_from_age)]
        if any(given) and not all(given):
            raise ValueError("retiree credits need the age and both amounts, or none of them")
        if "medical" in self.not_payable_categories:
            raise ValueError("medical care is what the account pays")
        return self


class ManualClaim(_Frozen):
    promised_working_days: int = Field(gt=0, le=60)
    legal_working_days: int = Field(gt=0, le=60)
    materials: dict[Literal["inpatient", "outpatient", "emergency", "accident"], frozenset[Material]]

    @model_validator(mode="after")
    def _consistent(self) -> "ManualClaim":
        if self.promised_working_days > self.legal_working_days:
            raise ValueError("the promised time cannot exceed the legal time")
        if set(self.materials) != {"inpatient", "outpatient", "emergency", "accident"}:
            raise ValueError("materials needs inpatient, outpatient, emergency and accident")
        return self


class RemoteCare(_Frozen):
    in_province_filing_required: bool
    cross_province_filing_required: bool
    # who is deemed filed without a filing (seed 003): emergency care the hospital marks as such,
    # and non-emergency care without a referral (paid under that category's rules)
    deemed_filed: frozenset[Literal["emergency", "unreferred"]] = frozenset()
    filing_types: frozenset[FilingType]
    temporary_filing_months: int | None = Field(default=None, gt=0, le=24)  # None: until cancelled
    province_level_filing: frozenset[Annotated[str, Field(pattern=r"^\d{2}$")]]
    temporary_ratio_reduction: None = None  # the seeds give no figure; applying one is not built
    cross_province_outpatient_diseases: frozenset[str]
    # a region without chronic/special money rules names the diseases its people register here
    diseases: list[Disease] = []

    _unique = field_validator("diseases")(_unique_diseases)


class Policy(_Frozen):
    """Every number one rule set applies, validated. Field names are the parameter file stems."""

    id: str
    region: str
    effective_from: dt.date
    effective_until: dt.date | None  # exclusive; None while in force
    settles: bool = True
    med_types: dict[str, Benefit]
    # the money sections: None only in a region that does not settle (RegionCard.settles)
    catalog: Catalog | None = None
    general_outpatient: GeneralOutpatient | None = None
    inpatient: Inpatient | None = None
    serious_illness: SeriousIllness | None = None
    elderly: Elderly | None = None
    chronic: Chronic | None = None
    special: Special | None = None
    day_surgery: DaySurgery | None = None
    pharmacy: Pharmacy | None = None
    maternity: Maternity | None = None
    assistance: Assistance | None = None
    account: Account | None = None
    manual_claim: ManualClaim | None = None
    remote_care: RemoteCare

    @model_validator(mode="after")
    def _known_diseases(self) -> "Policy":
        missing = [s for s in MONEY_SECTIONS if getattr(self, s) is None]
        if self.settles and missing:
            raise ValueError(f"a region that settles needs every money section; missing: {', '.join(missing)}")
        if self.settles and self.remote_care.diseases:
            raise ValueError("remote_care.diseases is for a region without chronic/special sections")
        unknown = sorted(c for c in self.remote_care.cross_province_outpatient_diseases if not self.disease(c))
        if unknown:
            raise ValueError(f"remote_care.cross_province_outpatient_diseases: {', '.join(unknown)} is no chronic or "
                             "special disease code of this rule set")
        return self

    def chronic_disease(self, code_or_name: str) -> Disease | None:
        diseases = self.chronic.diseases if self.chronic else self.remote_care.diseases
        return _find(diseases, code_or_name)

    def special_disease(self, code_or_name: str) -> Disease | None:
        return _find(self.special.diseases, code_or_name) if self.special else None

    def disease(self, code_or_name: str) -> Disease | None:
        """A chronic or special outpatient disease of this rule set, by code, name or short name."""
        return self.chronic_disease(code_or_name) or self.special_disease(code_or_name)

    def require_money(self, what: str) -> None:
        """Refuse NO_MONEY_POLICY where this region's data gives no money rules (RegionCard.settles)."""
        if not self.settles:
            raise SettlementRefused("NO_MONEY_POLICY", f"policy data for {self.region} "
                                    f"({self.id}) has no {what}: the seeds give its remote-care rules only")


def _find(diseases: list[Disease], key: str) -> Disease | None:
    for d in diseases:
        if key in (d.code, d.name, d.alias):
            return d
    return None


SECTIONS = [name for name in Policy.model_fields if name not in
            {"id", "region", "effective_from", "effective_until", "settles", "med_types"}]
MONEY_SECTIONS = [name for name in SECTIONS if name != "remote_care"]


# ---------------------------------------------------------------------------------------------
# Loading


class _StrictLoader(yaml.SafeLoader):
    """YAML that rejects duplicate keys and reads every decimal number as an exact Decimal."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise PolicyError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_StrictLoader.add_constructor(
    "tag:yaml.org,2002:float", lambda loader, node: Decimal(loader.construct_scalar(node))
)


def _read(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return yaml.load(f, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader
    except PolicyError as e:
        raise PolicyError(f"{path}: {e}") from None
    except (OSError, yaml.YAMLError) as e:
        raise PolicyError(f"{path}: cannot read: {e}") from None


def _errors(path: Path, err: ValidationError, prefix: str = "") -> PolicyError:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        lines.append(f"{path}: {prefix}{key}: {e['msg']}")
    return PolicyError("\n".join(lines))


class PolicyBook:
    """All regions' rule sets; picks the one for an insured region and a settlement date."""

    def __init__(self, policies: list[Policy], prefixes: dict[str, list[str]]) -> None:
        self.policies = policies
        self._prefixes = prefixes  # region -> insuplc_admdvs prefixes

    def select(self, insuplc_admdvs: str, on: dt.date) -> Policy:
        region = self.region_of(insuplc_admdvs)
        for p in self.policies:
            if p.region == region and p.effective_from <= on and (
                p.effective_until is None or on < p.effective_until
            ):
                return p
        raise SettlementRefused(
            "NO_POLICY", f"no rule set of region {region} is in force on {on.isoformat()}"
        )

    def catalog_at(self, mdtrtarea_admvs: str, on: dt.date) -> Catalog | None:
        """The catalogue data of the region that covers the treatment place, in force on `on`; None
        where yibao holds none (a region it does not cover, or one that does not settle)."""
        try:
            return self.select(mdtrtarea_admvs, on).catalog
        except SettlementRefused:
            return None

    def region_of(self, insuplc_admdvs: str) -> str:
        best = ""
        region = None
        for name, prefixes in self._prefixes.items():
            for prefix in prefixes:
                if insuplc_admdvs.startswith(prefix) and len(prefix) > len(best):
                    best, region = prefix, name
        if region is None:
            raise SettlementRefused(
                "NO_POLICY", f"insured region {insuplc_admdvs} is not covered by any policy file"
            )
        return region

    def forcing(self, rule_set_id: str) -> "PolicyBook":
        """This book with one rule set in force on every date for its region (the other rule sets of the
        region dropped; other regions as they are): what-if replays ask "these settlements under that
        rule set". KeyError when no rule set has this id."""
        chosen = next((p for p in self.policies if p.id == rule_set_id), None)
        if chosen is None:
            raise KeyError(rule_set_id)
        always = chosen.model_copy(update={"effective_from": dt.date.min, "effective_until": None})
        return PolicyBook([always if p is chosen else p for p in self.policies if p is chosen or p.region != chosen.region],
                          self._prefixes)



def load_region(directory: Path) -> tuple[RegionCard, list[Policy], dict[str, ParameterFile]]:
    """Load one region directory. Raises PolicyError naming the file, key and reason."""
    card_path = directory / "region.yaml"
    try:
        card = RegionCard.model_validate(_read(card_path))
    except ValidationError as e:
        raise _errors(card_path, e) from None

    starts = {r.from_ for r in card.rule_sets}
    files: dict[str, ParameterFile] = {}
    sections = SECTIONS if card.settles else [s for s in SECTIONS if s not in MONEY_SECTIONS]
    for section in sections:
        path = directory / f"{section}.yaml"
        if not path.exists():
            raise PolicyError(f"{path}: missing: every region needs the section {section!r}")
        try:
            files[section] = ParameterFile.model_validate(_read(path))
        except ValidationError as e:
            raise _errors(path, e) from None
        for name, param in files[section].parameters.items():
            stray = sorted(d for d in param.values if d not in starts)
            if stray:
                raise PolicyError(
                    f"{path}: parameters.{name}: value dated {stray[0]} is not the start of a rule "
                    f"set in region.yaml ({', '.join(sorted(str(s) for s in starts))})"
                )
    extra = sorted(p.stem for p in directory.glob("*.yaml"))
    unknown = [s for s in extra if s != "region" and s not in sections]
    if unknown:
        why = "" if card.settles else " (region.yaml says settles: false, so money sections do not belong here)"
        raise PolicyError(f"{directory}: unknown section file(s): {', '.join(unknown)}{why}")

    policies = []
    for i, rule_set in enumerate(card.rule_sets):
        until = card.rule_sets[i + 1].from_ if i + 1 < len(card.rule_sets) else None
        data: dict[str, Any] = {
            "id": rule_set.id,
            "region": card.region,
            "effective_from": rule_set.from_,
            "effective_until": until,
            "settles": card.settles,
            "med_types": card.med_types,
        }
        for section, pfile in files.items():
            data[section] = {}
            for name, param in pfile.parameters.items():
                dated = [d for d in param.values if d <= rule_set.from_]
                if dated:
                    data[section][name] = param.values[max(dated)].value
        try:
            policies.append(Policy.model_validate(data))
        except ValidationError as e:
            lines = []
            for err in e.errors():
                loc = [str(p) for p in err["loc"]]
                where = directory / f"{loc[0]}.yaml" if loc and loc[0] in files else card_path
                key = ".".join(loc[1:]) if loc and loc[0] in files else ".".join(loc)
                lines.append(f"{where}: {key}: {err['msg']} (rule set {rule_set.id})")
            raise PolicyError("\n".join(lines)) from None
    return card, policies, files


def load_policies(root: Path = POLICY_ROOT) -> PolicyBook:
    """Load every region under `root`. Called once at start-up; a PolicyError must stop it."""
    policies: list[Policy] = []
    prefixes: dict[str, list[str]] = {}
    regions = sorted(p for p in root.iterdir() if (p / "region.yaml").exists())
    if not regions:
        raise PolicyError(f"{root}: no region directory (with a region.yaml) found")
    for directory in regions:
        card, region_policies, _ = load_region(directory)
        if card.region in prefixes:
            raise PolicyError(f"{directory}: region {card.region!r} defined twice")
        prefixes[card.region] = card.insuplc_admdvs_prefixes
        policies.extend(region_policies)
    ids = [p.id for p in policies]
    if len(ids) != len(set(ids)):
        raise PolicyError(f"{root}: rule set ids must be unique across regions")
    return PolicyBook(policies, prefixes)
