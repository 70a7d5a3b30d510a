"""`yibao settle` end to end on the shipped demo file: one result per line, deterministic, explained."""
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli import app

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.jsonl"
runner = CliRunner()


def _settle(*args):
    return runner.invoke(app, ["settle", *map(str, args)])


def test_demo_settles_every_line_and_output_is_byte_identical(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert _settle(DEMO, "-o", first).exit_code == 0
    assert _settle(DEMO, "-o", second).exit_code == 0
    assert first.read_bytes() == second.read_bytes()
    results = [json.loads(l, parse_float=Decimal) for l in first.read_text().splitlines()]
    assert len(results) == len(DEMO.read_text().splitlines())
    assert sum(r["infcode"] == 0 for r in results) == len(results) - 2
    assert results[-4]["err_msg"].startswith("NO_MONEY_POLICY: cross-province care")  # the Shanxi-insured visit
    assert results[-2]["output"]["claim"] == {"claim_date": "2025-01-06", "promised_by": "2025-01-26", "due_by": "2025-02-08"}  # Spring Festival: Jan 28-Feb 4 off, Sun Jan 26 and Sat Feb 8 worked
    assert results[-1]["err_msg"].startswith("BAD_EVENT: line 45: input.feedetail[0].det_item_fee_sumamt")


def test_demo_covers_every_benefit(tmp_path):
    out = tmp_path / "r.jsonl"
    _settle(DEMO, "-o", out)
    benefits = {json.loads(l)["output"]["setlinfo"]["benefit"] for l in out.read_text().splitlines()
                if '"setlinfo"' in l}
    assert benefits == {"general_outpatient", "emergency_rescue", "day_surgery", "chronic_outpatient",
                        "special_outpatient", "inpatient", "pharmacy_account", "maternity", "family_planning"}


def test_money_is_written_as_numbers_with_two_decimals(tmp_path):
    out = tmp_path / "r.jsonl"
    _settle(DEMO, "-o", out)
    text = out.read_text()
    assert '"hifp_pay":332.50,' in text  # seed 001 问题四: the Kunming example, level 1, from 2024-11-01
    assert '"pool_prop_selfpay":0.7000,' in text


def test_explain_prints_the_derivation_with_policy_keys():
    result = _settle(DEMO, "--explain")
    assert result.exit_code == 0
    assert "(500-20-5)×70%=332.5" in result.output
    assert "general_outpatient.ratio_active+retiree_ratio_bonus" in result.output
    assert "elderly.inpatient_floor_ratio" in result.output


def test_explain_masks_personal_numbers(tmp_path):
    result = _settle(DEMO, "--explain", "-o", tmp_path / "r.jsonl")
    assert "5301************11" in result.output
    assert "530102195201150011" not in result.output


def test_summary_counts_ok_refused_and_invalid(tmp_path):
    result = _settle(DEMO, "-o", tmp_path / "r.jsonl")
    assert "45 events: 43 ok, 1 refused, 1 invalid" in result.output


def test_bad_policy_directory_stops_start_up_with_the_reason(tmp_path):
    shutil.copytree(Path(__file__).resolve().parents[1] / "processors" / "policies", tmp_path / "p")
    card = tmp_path / "p" / "yunnan" / "elderly.yaml"
    card.write_text(card.read_text().replace("value: 70", "value: -70"))
    result = runner.invoke(app, ["settle", str(DEMO), "--policies", str(tmp_path / "p")])
    assert result.exit_code == 2
    assert "elderly.yaml: age: Input should be greater than 0" in result.output


def test_policies_lists_the_rule_sets():
    result = runner.invoke(app, ["policies"], terminal_width=200)
    assert result.exit_code == 0
    assert "yunnan-provincial-2022" in result.output and "2024-11-01" in result.output
    assert "shanxi-2025-03" in result.output and "remote-care rules only" in result.output.replace("\n", " ")


def test_hostile_lines_get_error_results_and_the_file_goes_on(tmp_path):
    valid = DEMO.read_bytes().splitlines()[:5]
    hostile = [b'{"infno":"2207","msgid":"D","input":' + b"[" * 5000 + b"]" * 5000 + b"}",
               b'{"infno":"2207","msgid":"S\\ud800","fixmedins_code":"H\\udfff","input":{}}',
               b'{"infno":"2207","msgid":"N","input":{"data":{"x":' + b"9" * 4400 + b"}}}",
               b"\xff\xfe\x00", b"[]", b'"just a string"']
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"\n".join(valid[:2] + hostile + valid[2:]) + b"\n")
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b"\n".join(valid) + b"\n")
    out, want = tmp_path / "out.jsonl", tmp_path / "want.jsonl"
    assert _settle(mixed, "-o", out).exit_code == 0
    assert _settle(clean, "-o", want).exit_code == 0
    got = out.read_bytes().splitlines()
    assert len(got) == len(valid) + len(hostile)
    errors = [json.loads(l) for l in got[2:2 + len(hostile)]]
    assert [e["infcode"] for e in errors] == [-1] * len(hostile)
    assert errors[0]["err_msg"] == "BAD_EVENT: line 3: not JSON: nested too deeply"
    assert errors[1]["inf_refmsgid"] == "S\\ud800" and "msgid, fixmedins_code escaped" in errors[1]["err_msg"]
    assert got[:2] + got[2 + len(hostile):] == want.read_bytes().splitlines()


def test_account_shows_the_balance_and_every_movement_of_the_demo_member():
    shown = runner.invoke(app, ["account", "530102198503200022", str(DEMO), "--json"])
    assert shown.exit_code == 0, shown.output
    view = json.loads(shown.stdout, parse_float=Decimal)
    assert view["balc"] == Decimal("0.00")  # the 900 purchase of 12-18 took 838.27, then 42 from the parent
    assert [m["kind"] for m in view["history"]] == ["set", "debit", "debit", "restore", "credit", "debit", "debit"]
    assert view["history"][4] == {"day": "2024-12-01", "kind": "credit", "amount": Decimal("117.77"),
                                  "ref": "2024-12", "balc": Decimal("896.27")}
    assert view["bindings"] == [{"auth_psn_no": "530102195201150011", "relation": "child", "begndate": "2024-11-01"}]
    parent = json.loads(runner.invoke(app, ["account", "530102195201150011", str(DEMO), "--json"]).stdout,
                        parse_float=Decimal)
    assert [(m["kind"], m["amount"], m["balc"]) for m in parent["history"][-3:]] == [
        ("credit", Decimal("142.00"), Decimal("142.00")), ("contrib", Decimal("-100.00"), Decimal("42.00")),
        ("mulaid", Decimal("-42.00"), Decimal("0.00"))]
    table = runner.invoke(app, ["account", "530102198503200022", str(DEMO)])
    assert table.exit_code == 0 and "530102198503200022" not in table.stdout and "838.27" in table.stdout
    missing = runner.invoke(app, ["account", "NOBODY", str(DEMO)])
    assert missing.exit_code == 1


def test_policies_lists_the_diseases_with_their_codes_and_aliases():
    shown = runner.invoke(app, ["policies", "--diseases"], terminal_width=200)
    assert shown.exit_code == 0
    assert "MXB18" in shown.stdout and "类风湿性关节炎" in shown.stdout and "TSB17" in shown.stdout
    assert "SX08" in shown.stdout and "强直性脊柱炎" in shown.stdout


def test_a_ledger_bug_stops_settle_at_its_line_with_the_results_before_it_written(tmp_path, monkeypatch):
    from processors.ledger import Ledger
    answer = Ledger.answer

    def failing(self, event):
        if event.msgid == "H53010100001202411010900000002":
            raise RuntimeError("injected ledger bug")
        return answer(self, event)

    monkeypatch.setattr(Ledger, "answer", failing)
    out = tmp_path / "r.jsonl"
    result = _settle(DEMO, "-o", out)
    assert result.exit_code == 3
    assert "stopped: line 14: the ledger failed on this event (RuntimeError: injected ledger bug)" in result.output
    assert len(out.read_bytes().splitlines()) == 13  # every line before it answered, nothing after


@pytest.mark.parametrize("name, value", [("YIBAO_ANSWER_DAYS", "-1"), ("YIBAO_SNAPSHOT_EVERY", "0")])
def test_a_setting_that_would_expire_every_answer_or_snapshot_every_batch_is_refused(monkeypatch, name, value):
    from streams.settings import Settings
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match=f"{name}={value}: give"):
        Settings()
