"""Policies are validated at load: a missing or inconsistent value stops start-up with file, key, reason."""
import datetime as dt
import shutil
from decimal import Decimal

import pytest

from processors.exceptions import PolicyError, SettlementRefused
from processors.policy import POLICY_ROOT, load_policies
from tests.support import BOOK


@pytest.fixture
def region_copy(tmp_path):
    root = tmp_path / "policies"
    shutil.copytree(POLICY_ROOT / "yunnan", root / "yunnan")
    return root


def _edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_rule_set_chosen_by_settlement_date():
    assert BOOK.select("530100", dt.date(2024, 10, 31)).id == "yunnan-provincial-2022"
    assert BOOK.select("530100", dt.date(2024, 11, 1)).id == "yunnan-2024-11"
    assert BOOK.select("530100", dt.date(2024, 11, 1)).general_outpatient.deductible == {
        1: Decimal("20"), 2: Decimal("40"), 3: Decimal("60")}
    assert BOOK.select("530100", dt.date(2024, 10, 31)).general_outpatient.deductible[3] == Decimal("90")


def test_values_that_did_not_change_carry_into_the_new_rule_set():
    old, new = [p for p in BOOK.policies if p.region == "yunnan"]
    assert old.inpatient == new.inpatient
    assert new.general_outpatient.retiree_ratio_bonus == Decimal("0.10")
    assert old.general_outpatient.retiree_ratio_bonus == Decimal("0.05")
    assert (old.pharmacy.general_outpatient_with_eprescription, new.pharmacy.general_outpatient_with_eprescription) == (False, True)


def test_uncovered_region_and_date_are_refused():
    with pytest.raises(SettlementRefused, match="440100 is not covered"):
        BOOK.select("440100", dt.date(2024, 11, 1))
    with pytest.raises(SettlementRefused, match="no rule set of region shanxi is in force on 2025-03-30"):
        BOOK.select("140100", dt.date(2025, 3, 30))
    with pytest.raises(SettlementRefused, match="in force on 2021-12-31"):
        BOOK.select("530100", dt.date(2021, 12, 31))


def test_missing_value_names_file_and_key(region_copy):
    _edit(region_copy / "yunnan" / "inpatient.yaml", "  annual_cap:", "  annual_cap_typo:")
    with pytest.raises(PolicyError) as e:
        load_policies(region_copy)
    assert "inpatient.yaml" in str(e.value) and "annual_cap" in str(e.value)


def test_ratio_above_one_is_rejected(region_copy):
    _edit(region_copy / "yunnan" / "chronic.yaml", "value: 0.80", "value: 1.80")
    with pytest.raises(PolicyError, match=r"chronic\.yaml: ratio: Input should be less than or equal to 1"):
        load_policies(region_copy)


def test_deductibles_must_not_grow_with_admission_ordinal(region_copy):
    _edit(region_copy / "yunnan" / "inpatient.yaml", "2: {1: 120, 2: 165, 3: 264}", "2: {1: 120, 2: 165, 3: 999}")
    with pytest.raises(PolicyError, match="must not grow with the admission ordinal"):
        load_policies(region_copy)


def test_value_without_source_is_rejected(region_copy):
    _edit(region_copy / "yunnan" / "serious_illness.yaml", "        source:\n", "        sauce:\n")
    with pytest.raises(PolicyError, match=r"serious_illness\.yaml: parameters\.ratio\.values\.2022-01-01\.source"):
        load_policies(region_copy)


def test_duplicate_key_is_rejected(region_copy):
    _edit(region_copy / "yunnan" / "day_surgery.yaml", "  deductible_factor:", "  deductible_factor: 1\n  deductible_factor:")
    with pytest.raises(PolicyError, match="duplicate key 'deductible_factor'"):
        load_policies(region_copy)


def test_value_dated_off_a_rule_set_start_is_rejected(region_copy):
    _edit(region_copy / "yunnan" / "serious_illness.yaml", "2022-01-01:", "2023-01-01:")
    with pytest.raises(PolicyError, match="dated 2023-01-01 is not the start of a rule set"):
        load_policies(region_copy)


def test_missing_section_file_is_rejected(region_copy):
    (region_copy / "yunnan" / "assistance.yaml").unlink()
    with pytest.raises(PolicyError, match="assistance.yaml: missing"):
        load_policies(region_copy)


def test_a_third_region_is_a_data_directory(region_copy):
    shutil.copytree(region_copy / "yunnan", region_copy / "other")
    card = region_copy / "other" / "region.yaml"
    _edit(card, "region: yunnan", "region: other")
    _edit(card, 'insuplc_admdvs_prefixes: ["53"]', 'insuplc_admdvs_prefixes: ["14"]')
    _edit(card, "id: yunnan-provincial-2022", "id: other-2022")
    _edit(card, "id: yunnan-2024-11", "id: other-2024-11")
    book = load_policies(region_copy)
    assert book.select("140100", dt.date(2024, 11, 1)).id == "other-2024-11"
    assert book.select("530100", dt.date(2024, 11, 1)).id == "yunnan-2024-11"


def test_a_region_that_does_not_settle_holds_remote_care_only_and_refuses_money(tmp_path):
    root = tmp_path / "policies"
    shutil.copytree(POLICY_ROOT / "shanxi", root / "shanxi")
    policy = load_policies(root).select("140100", dt.date(2025, 4, 1))
    assert (policy.settles, policy.catalog, policy.inpatient) == (False, None, None)
    assert policy.disease("冠心病").code == "SX08" and policy.disease("SX04").name == "尿毒症透析"
    with pytest.raises(SettlementRefused, match="NO_MONEY_POLICY: policy data for shanxi .* has no account rules"):
        policy.require_money("account rules")
    shutil.copy(POLICY_ROOT / "yunnan" / "catalog.yaml", root / "shanxi" / "catalog.yaml")
    with pytest.raises(PolicyError, match="unknown section file.*catalog.*settles: false"):
        load_policies(root)

