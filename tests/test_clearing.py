"""`yibao clearing report`: a month's settlements and cancels summed per clearing pair (treatment
prefecture → insured prefecture) and institution, equal to the sum of the results themselves."""
import csv
import json
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from processors.clearing import SUMS
from schemas.serde import encode
from streams.cli import app
from tests.test_properties import scenarios

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.jsonl"
runner = CliRunner()


def _report(events: Path, period: str, out: Path) -> list[dict]:
    shown = runner.invoke(app, ["clearing", "report", str(events), "--period", period, "--csv", str(out)])
    assert shown.exit_code == 0, shown.output
    with out.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _by_result(events: Path, period: str) -> dict[str, Decimal]:
    """The same sums straight from `yibao settle`'s results, each setl_id once (manual claims aside:
    the agency pays them, they are not cleared with an institution)."""
    settled = runner.invoke(app, ["settle", str(events)])
    infos = {}
    for line in settled.stdout.splitlines():
        if not line.startswith("{"):
            continue
        output = json.loads(line, parse_float=Decimal).get("output") or {}
        info = output.get("setlinfo") if "claim" not in output else None  # a manual claim is not cleared
        if info and info["setl_time"].startswith(period):
            infos.setdefault(info["setl_id"], info)
    return {k: sum((i[k] for i in infos.values()), Decimal("0.00")) for k in SUMS} | {"n": len(infos)}


def test_the_demo_months_add_up_to_their_results_and_name_the_cross_province_pair(tmp_path):
    for period in ("2024-10", "2024-11", "2024-12"):
        rows = _report(DEMO, period, tmp_path / f"{period}.csv")
        want = _by_result(DEMO, period)
        assert sum(int(r["settlements"]) + int(r["cancels"]) for r in rows) == want["n"]
        for k in SUMS:
            assert sum((Decimal(r[k]) for r in rows), Decimal("0.00")) == want[k], (period, k)
    [taiyuan] = [r for r in _report(DEMO, "2024-12", tmp_path / "dec.csv") if r["mdtrtarea_admvs"] == "140100"]
    assert (taiyuan["insuplc_admdvs"], taiyuan["fixmedins_code"], taiyuan["hifp_pay"]) == ("530100", "H14010500009", "169.00")
    nov = {r["fixmedins_code"]: r for r in _report(DEMO, "2024-11", tmp_path / "nov.csv")}
    assert (nov["H53010200002"]["settlements"], nov["H53010200002"]["cancels"]) == ("4", "1")  # the cancelled stay


def test_a_month_is_asked_for_as_yyyy_mm():
    shown = runner.invoke(app, ["clearing", "report", str(DEMO), "--period", "2024-13"])
    assert shown.exit_code == 2 and "give a month as yyyy-MM" in shown.output


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(scenarios())
def test_clearing_totals_equal_the_sum_of_results_after_settles_and_cancels(tmp_path, scenario):
    setup, events, _ = scenario
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(encode(e) + b"\n" for e in setup + events))
    months = {e["input"]["data"]["setl_time"][:7] for e in events if "setl_time" in e["input"].get("data", {})}
    for period in sorted(months):
        rows = _report(path, period, tmp_path / "out.csv")
        want = _by_result(path, period)
        for k in SUMS:
            assert sum((Decimal(r[k]) for r in rows), Decimal("0.00")) == want[k]
