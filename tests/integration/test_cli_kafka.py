"""`yibao send`, `yibao tail` and the metrics endpoint, as a person uses them against the running service."""
import json
import subprocess
import sys
import urllib.request

from schemas.serde import encode
from tests.integration.harness import ROOT
from tests.support import line, person, settlement


def _yibao(*args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=ROOT, capture_output=True,
                          timeout=timeout)


def test_send_prints_each_result_in_file_order_and_tail_masks_people(broker, worker, tmp_path):
    events = [person("CLI000000000000011", retired=True, brdy="1952-01-15"),
              settlement([line("400"), line("100", "02")], psn_no="CLI000000000000011", level=1, msgid="CLI-2207-1"),
              settlement([line("10")], psn_no="CLI000000000000011", msgid="CLI-2207-1")]  # msgid reused
    path = tmp_path / "cli.jsonl"
    path.write_bytes(b"".join(encode(e) + b"\n" for e in events) + b"not json\n")
    sent = _yibao("send", str(path), "--bootstrap", broker.bootstrap)
    assert sent.returncode == 1  # the unsendable last line makes it fail, after sending the rest
    results = [json.loads(l) for l in sent.stdout.splitlines()]
    assert [r["inf_refmsgid"] for r in results] == [events[0]["msgid"], "CLI-2207-1", "CLI-2207-1"]
    assert results[1]["output"]["setlinfo"]["hifp_pay"] == 332.5  # seed 001 问题四, level 1
    assert results[2]["err_msg"].startswith("MSGID_REUSED")  # the second send gets its own answer
    assert b"line 4: not sent: not JSON" in sent.stderr and b"3 sent, 3 results, 0 missing" in sent.stderr

    tail = _yibao("tail", "results", "--bootstrap", broker.bootstrap, "--from-beginning", "--idle", "3")
    out = tail.stdout.decode()
    assert tail.returncode == 0 and "CLI-2207-1" in out and "general_outpatient" in out
    assert "CLI0************11" in out and "CLI000000000000011" not in out


def test_metrics_count_events_and_rejects(broker, worker):
    text = urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=10).read().decode()
    counted = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
               if line.startswith("yibao_") and " " in line}
    assert counted['yibao_events_in_total{topic="insured.commands"}'] > 0
    assert counted['yibao_events_out_total{topic="settle.results"}'] > 0
    assert counted["yibao_ledger_apply_seconds_count"] > 0


def test_account_asks_the_running_service_and_agrees_with_offline(broker, worker, tmp_path):
    from tests.support import credit, hospitals
    events = hospitals() + [person("ACCQ00000000000011", balc="50"), credit("2024-11", "ACCQ00000000000011", "4000"),
                            settlement([line("100")], psn_no="ACCQ00000000000011", acct_used_flag="1", msgid="ACCQ-1")]
    path = tmp_path / "acc.jsonl"
    path.write_bytes(b"".join(encode(e) + b"\n" for e in events))
    assert _yibao("send", str(path), "--bootstrap", broker.bootstrap).returncode == 0
    online = _yibao("account", "ACCQ00000000000011", "--bootstrap", broker.bootstrap, "--json")
    offline = _yibao("account", "ACCQ00000000000011", str(path), "--json")
    assert online.returncode == 0, online.stderr
    assert online.stdout == offline.stdout  # the same view, byte for byte
    view = json.loads(online.stdout)
    assert [m["kind"] for m in view["history"]] == ["set", "credit", "debit"]
    shown = _yibao("account", "ACCQ00000000000011", "--bootstrap", broker.bootstrap)
    assert shown.returncode == 0 and b"ACCQ00000000000011" not in shown.stdout  # masked on screen
    unknown = _yibao("account", "NOBODY", "--bootstrap", broker.bootstrap)
    assert unknown.returncode == 1 and b"UNKNOWN_PERSON" in unknown.stderr
