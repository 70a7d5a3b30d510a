"""`yibao replay` over archives built offline (tests/archived.py: the real router, ledger and clearing
code over in-memory logs, archived with ArchiveWriter): an archive replays identically; a changed rate
shows exactly the settlements it changes, to the fen, and nothing else; an edited result is named by
`verify`, and caught by the replay even when the manifest is re-hashed to match; a window from a time
starts at the right event; bad input exits 2. (The real service's archive: tests/integration/
test_archive_stream.py.)"""
import hashlib
import json
import shutil
from decimal import Decimal
from pathlib import Path

import fastavro
import pytest
from typer.testing import CliRunner

from connectors.archive import MANIFEST, SCHEMA, read_manifest, records, verify
from processors.ids import settlement_id
from processors.policy import load_policies
from schemas.avro import message_time
from streams import topics
from streams.cli import app
from streams.replay import Replay, Scope, choose_archive, instant, read_archive
from tests.archived import MINUTE, T0, archive
from tests.support import BOOK, hospitals, line, person, settlement

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.jsonl"
POLICIES = Path(__file__).resolve().parents[1] / "processors" / "policies"
ACTIVE, RETIRED = "530102198001010011", "530102195001010022"
runner = CliRunner()


def _replay(*args) -> "object":
    return runner.invoke(app, ["replay", *map(str, args)])


def _events() -> list[dict]:
    """Two level-1 general outpatient visits (an active member's, a retiree's) and a level-2 one."""
    return hospitals() + [person(ACTIVE), person(RETIRED, retired=True),
                          settlement([line("120.00")], psn_no=ACTIVE, day="2024-11-05", acct_used_flag="0", msgid="V1"),
                          settlement([line("220.00")], psn_no=RETIRED, day="2024-11-06", acct_used_flag="0", msgid="V2"),
                          settlement([line("300.00")], psn_no=ACTIVE, day="2024-11-07", level=2, acct_used_flag="0",
                                     msgid="V3")]


@pytest.fixture
def visits(tmp_path) -> Path:
    return archive(_events(), tmp_path / "visits")


@pytest.fixture
def raised_rate(tmp_path) -> Path:
    """The policies with the level-1 general outpatient ratio of 2024-11 raised from 60% to 70%."""
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root)
    path = root / "yunnan" / "general_outpatient.yaml"
    text = path.read_text(encoding="utf-8")
    old = "      2024-11-01:\n        value: {1: 0.60, 2: 0.55, 3: 0.50}"
    assert text.count(old) == 1
    path.write_text(text.replace(old, "      2024-11-01:\n        value: {1: 0.70, 2: 0.55, 3: 0.50}"), encoding="utf-8")
    return root


def _money(fields) -> dict:
    return {path: (str(old), str(new)) for path, old, new in fields}


def test_a_streamed_archive_replays_identically(tmp_path):
    root = archive([l for l in DEMO.read_bytes().splitlines() if l.strip()], tmp_path / "demo")
    shown = _replay(root)
    assert shown.exit_code == 0, shown.output
    assert "intact" in shown.output and "identical: every recomputed record equals the recorded one" in shown.output
    outcome = Replay(read_archive(root)[0], BOOK, 4, 1_000_000).run()
    assert outcome.identical and outcome.events == 45
    assert {t: (x.recorded, x.identical, x.different, x.only_recorded, x.only_recomputed)
            for t, x in outcome.tallies.items()} == {
        "ledger.ops": (59, 59, 0, 0, 0), "clearing.entries": (25, 25, 0, 0, 0), "settle.results": (45, 45, 0, 0, 0),
        "settle.rejected": (1, 1, 0, 0, 0), "clearing.statements": (8, 8, 0, 0, 0)}


def test_a_changed_rate_shows_exactly_the_settlements_it_changes(visits, raised_rate):
    outcome = Replay(read_archive(visits)[0], load_policies(raised_rate), 4, 1_000_000).run()
    v1, v2 = settlement_id("S", ACTIVE, "V1"), settlement_id("S", RETIRED, "V2")
    found = {(d.topic, d.what, d.kind): _money(d.fields) for d in outcome.differences}
    # active: (120 - 20) × 60% = 60.00 becomes × 70% = 70.00; retiree: (220 - 20) × (60% + 10%) = 140.00 becomes × 80% = 160.00
    assert found == {
        ("settle.results", v1, "different"): {
            "output.setlinfo.hifp_pay": ("60.00", "70.00"), "output.setlinfo.pool_prop_selfpay": ("0.6000", "0.7000"),
            "output.setlinfo.fund_pay_sumamt": ("60.00", "70.00"), "output.setlinfo.psn_part_amt": ("60.00", "50.00"),
            "output.setlinfo.psn_cash_pay": ("60.00", "50.00"), "output.setldetail[0].fund_payamt": ("60.00", "70.00")},
        ("settle.results", v2, "different"): {
            "output.setlinfo.hifp_pay": ("140.00", "160.00"), "output.setlinfo.pool_prop_selfpay": ("0.7000", "0.8000"),
            "output.setlinfo.fund_pay_sumamt": ("140.00", "160.00"), "output.setlinfo.psn_part_amt": ("80.00", "60.00"),
            "output.setlinfo.psn_cash_pay": ("80.00", "60.00"), "output.setldetail[0].fund_payamt": ("140.00", "160.00")},
        ("clearing.entries", v1, "different"): {"fund_pay_sumamt": ("60.00", "70.00"), "hifp_pay": ("60.00", "70.00"),
                                                 "psn_cash_pay": ("60.00", "50.00")},
        ("clearing.entries", v2, "different"): {"fund_pay_sumamt": ("140.00", "160.00"), "hifp_pay": ("140.00", "160.00"),
                                                 "psn_cash_pay": ("80.00", "60.00")},
    }
    derivation = next(d.derivations for d in outcome.differences if d.what == v1 and d.topic == "settle.results")
    assert [s["calc"] for s in derivation[0]][-1] == "(120-20)×60%=60"
    assert [s["calc"] for s in derivation[1]][-1] == "(120-20)×70%=70"

    shown = _replay(visits, "--policies", raised_rate)
    assert shown.exit_code == 1
    assert "4 differences" in shown.output and v1 in shown.output and "(120-20)×70%=70" in shown.output
    only_v2 = _replay(visits, "--policies", raised_rate, "--period", "2024-11-06..2024-11-06")
    assert only_v2.exit_code == 1 and "2 differences" in only_v2.output
    assert v2 in only_v2.output and v1 not in only_v2.output


def _rewrite(root: Path, entry: dict, change) -> None:
    """Write a segment again with one record's value changed: a valid Avro file, nothing else touched."""
    rows = list(records(root, entry))
    change(rows)
    with (root / entry["file"]).open("wb") as f:
        fastavro.writer(f, SCHEMA, rows, codec="deflate")


def _rehash(root: Path) -> None:
    """What a careful forger does next: every file's SHA-256 and the whole hash chain made to match."""
    from connectors.archive import GENESIS, _entry_hash
    prev, lines = GENESIS, []
    for e in read_manifest(root):
        e["sha256"] = hashlib.sha256((root / e["file"]).read_bytes()).hexdigest()
        e["prev"] = prev
        e["hash"] = prev = _entry_hash(e)
        lines.append(json.dumps(e, sort_keys=True, separators=(",", ":")))
    (root / MANIFEST).write_text("\n".join(lines) + "\n")


def _raise_v1(rows: list[dict]) -> None:
    for r in rows:
        if b'"inf_refmsgid":"V1"' in r["value"]:
            r["value"] = r["value"].replace(b'"hifp_pay":60.00', b'"hifp_pay":66.00')
            return
    raise AssertionError("V1's result is not in this segment")


def test_an_edited_result_is_named_by_verify_and_caught_by_the_replay_when_rehashed(visits):
    _, head = verify(visits)
    entry = next(e for e in read_manifest(visits) if e["topic"] == "settle.results"
                 and any(b'"V1"' in r["value"] for r in records(visits, e)))
    _rewrite(visits, entry, _raise_v1)
    shown = _replay(visits)
    assert shown.exit_code == 1
    assert f"{entry['file']}): its SHA-256 differs from the manifest's: the file was changed" in shown.output
    assert "output.setlinfo.hifp_pay" in shown.output and "66.00" in shown.output

    _rehash(visits)
    assert verify(visits)[0] == []  # the archive checks out: only the replay can tell
    outcome = Replay(read_archive(visits)[0], BOOK, 4, 1_000_000).run()
    [d] = outcome.differences
    assert (d.topic, d.what, d.kind, _money(d.fields)) == (
        "settle.results", settlement_id("S", ACTIVE, "V1"), "different", {"output.setlinfo.hifp_pay": ("66.00", "60.00")})
    assert d.where.startswith("settle.results[")
    shown = _replay(visits, "--head", head)
    assert shown.exit_code == 1 and f"not the published {head}: the manifest was rewritten" in shown.output


def test_an_edited_request_is_caught_where_the_router_would_have_written_otherwise(visits):
    entry = next(e for e in read_manifest(visits) if e["topic"] == "settle.requests"
                 and any(b'"V3"' in r["value"] for r in records(visits, e)))

    def cheaper(rows):
        for r in rows:
            r["value"] = r["value"].replace(b'"det_item_fee_sumamt":300.00', b'"det_item_fee_sumamt":30.00')

    _rewrite(visits, entry, cheaper)
    _rehash(visits)
    outcome = Replay(read_archive(visits)[0], BOOK, 4, 1_000_000).run()
    by_topic = {d.topic for d in outcome.differences}
    assert {"settle.results", "clearing.entries", "ledger.ops"} <= by_topic
    op = next(d for d in outcome.differences if d.topic == "ledger.ops")
    assert _money(op.fields)["body.input.feedetail[0].det_item_fee_sumamt"] == ("300.00", "30.00")


def test_a_replay_from_a_time_starts_at_the_first_event_recorded_then(visits, raised_rate):
    log, _ = read_archive(visits)
    start = T0 + 6 * MINUTE + 30_000  # events are recorded a minute apart: the 8th (index 7, V2) is the first after it
    outcome = Replay(log, load_policies(raised_rate), 4, 1_000_000, Scope(from_time_ms=start)).run()
    assert outcome.first_event.timestamp_ms == T0 + 7 * MINUTE and b'"V2"' in outcome.first_event.value
    assert outcome.events == 2  # V2 and V3
    assert {d.what for d in outcome.differences} == {settlement_id("S", RETIRED, "V2")}  # V1's change is before
    shown = _replay(visits, "--policies", raised_rate, "--from-time", message_time(start))
    assert shown.exit_code == 1
    assert f"2 events from {outcome.first_event.where}, recorded {message_time(T0 + 7 * MINUTE)}" in shown.output
    assert instant("2024-11-01T08:06:30+08:00") == start


def test_the_newest_life_is_replayed_unless_one_is_named(tmp_path):
    parent = tmp_path / "archive"
    archive(_events()[:5], parent / "embedded-20261101T000000Z")
    archive(_events(), parent / "embedded-20261102T000000Z")
    chosen, found = choose_archive(parent)
    assert chosen.name == "embedded-20261102T000000Z" and len(found) == 2
    shown = _replay(parent, "--life", "embedded-20261101T000000Z")
    assert shown.exit_code == 0 and "5 events" in shown.output and "embedded-20261101T000000Z" in shown.output
    assert "the newest of 2 lives" in _replay(parent).output


@pytest.mark.parametrize("args, message", [
    (["/nonexistent/archive"], "no such directory"),
    (["{empty}"], "not an audit archive"),
    (["{visits}", "--period", "2024-13"], "give a month (yyyy-MM) or days"),
    (["{visits}", "--period", "2024-11-09..2024-11-01"], "first ≤ last"),
    (["{visits}", "--from-time", "yesterday"], "give an ISO-8601 time"),
    (["{visits}", "--policy", "yunnan-1999"], "neither a policy directory nor a rule set id"),
    (["{visits}", "--csv", "x.csv"], "give --policy too"),
    (["{visits}", "--partitions", "2"], "beyond the 2 partitions given"),
    ([], "give an archive directory or --bootstrap"),
])
def test_bad_input_exits_2_with_a_message(tmp_path, visits, args, message):
    (tmp_path / "empty").mkdir()
    shown = _replay(*(a.format(empty=tmp_path / "empty", visits=visits) for a in args))
    assert shown.exit_code == 2 and message in shown.output, shown.output


def test_an_archive_with_no_sealed_segment_exits_2(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / MANIFEST).write_text("")
    shown = _replay(tmp_path / "a")
    assert shown.exit_code == 2 and "holds no sealed record" in shown.output


def test_what_if_totals_are_the_sums_of_the_replayed_settlements(tmp_path):
    """The demo under the 2022 rules on every date: each total is the sum of the settlements the
    offline engine gives under that rule set, the CSV rows add up to it, the chart is a PNG."""
    from connectors.files import settle_lines
    from processors.ledger import Ledger

    lines = [l for l in DEMO.read_bytes().splitlines() if l.strip()]
    root = archive(lines, tmp_path / "demo")
    forced = BOOK.forcing("yunnan-provincial-2022")
    offline = {}
    for item in settle_lines(lines, Ledger(forced)):
        info = (item.result.get("output") or {}).get("setlinfo") if item.result["infcode"] == 0 else None
        if info:
            offline.setdefault(info["setl_id"], info)
    csv_path, chart = tmp_path / "w.csv", tmp_path / "w.png"
    shown = _replay(root, "--policy", "yunnan-provincial-2022", "--csv", csv_path, "--chart", chart)
    assert shown.exit_code == 0, shown.output

    from streams.whatif import pairs, summarize
    runner_ = Replay(read_archive(root)[0], forced, 4, 1_000_000, compare=False)
    found = pairs(runner_.run(), runner_)
    summary = summarize(found)
    assert {p.setl_id for p in found} == set(offline)
    for name in ("fund_pay_sumamt", "hifp_pay", "maf_pay", "acct_pay", "acct_mulaid_pay", "psn_cash_pay"):
        assert summary.totals[name][1] == sum(i[name] for i in offline.values()), name
    assert summary.totals["fund_pay_sumamt"] == (Decimal("59880.35"), Decimal("59665.50"))
    assert f"{summary.totals['fund_pay_sumamt'][1]}" in shown.output and "-214.85" in shown.output
    rows = list(__import__("csv").DictReader(csv_path.open(encoding="utf-8")))
    assert len(rows) == len(offline)
    assert sum(Decimal(r["fund_pay_sumamt_new"]) for r in rows) == summary.totals["fund_pay_sumamt"][1]
    assert sum(Decimal(r["fund_pay_sumamt_old"]) for r in rows) == summary.totals["fund_pay_sumamt"][0]
    assert all(r["psn_no"].count("*") == 12 for r in rows)  # masked
    assert sum(summary.months[m][1] for m in summary.months) == summary.totals["fund_pay_sumamt"][1]
    data = chart.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_what_if_under_a_policy_directory_over_a_period(visits, raised_rate):
    shown = _replay(visits, "--policy", raised_rate, "--period", "2024-11")
    assert shown.exit_code == 0, shown.output
    assert "what-if: 3 settlements and cancels" in shown.output
    assert "persons: 2 better off" in shown.output  # each pays 10.00 / 20.00 less
    assert "+30.00" in shown.output  # fund pay: 60 + 140 + 143 becomes 70 + 160 + 143


def test_a_forced_rule_set_is_in_force_on_every_date_of_its_region_only():
    import datetime as dt

    forced = BOOK.forcing("yunnan-provincial-2022")
    assert {forced.select("530100", dt.date(y, 1, 2)).id for y in (2020, 2024, 2026)} == {"yunnan-provincial-2022"}
    assert [p.id for p in forced.policies if p.region == "shanxi"] == [p.id for p in BOOK.policies if p.region == "shanxi"]
    assert BOOK.select("530100", dt.date(2025, 1, 2)).id == "yunnan-2024-11"  # the book itself is unchanged
    with pytest.raises(KeyError):
        BOOK.forcing("yunnan-1999")


def test_placeholders_of_a_restore_are_no_events_and_replay_identically(tmp_path):
    """A restore pads offsets the archive lacked with placeholders (streams/restore.py); archived after
    it, they are in the log but are no one's event: the replay skips them as the agents do."""
    from connectors.archive import ArchiveWriter
    root = archive([l for l in DEMO.read_bytes().splitlines() if l.strip()], tmp_path / "demo")
    writer = ArchiveWriter(root)
    for topic in (topics.REQUESTS, topics.LEDGER_OPS):
        at = writer.next_offset.get((topic, 0), 0)
        for offset in range(at, at + 3):
            writer.add(topic, 0, offset, T0 + 10**8, None, [topics.PLACEHOLDER], b"placeholder")
    writer.close()
    shown = _replay(root)
    assert shown.exit_code == 0, shown.output
    assert Replay(read_archive(root)[0], BOOK, 4, 1_000_000).run().events == 45
