"""`make run`'s setup (embedded broker, archive, snapshots) stopped and started again loses nothing.

The embedded broker keeps its topics in memory; the archive restores them at the next start
(streams/restore.py). Stopped with SIGTERM, then with kill -9 of the whole process tree (worker,
archiver, broker) mid-segment: each time a re-sent request gets its stored result, and new settlements
see the balances and year-to-date totals of everything before, as the offline run of the same events.
Then killed the same way in the middle of a burst: every request answered before the kill is
answered the same after it, each gets one result, and every settlement has its clearing entry.
"""
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from schemas.serde import encode
from streams import codec, topics

from tests.integration.harness import (ROOT, mixed_bills, offline, produce, read_all, results_by_msgid, send,
                                       wait_for_results)
from tests.support import hospitals, line, person, settlement


JSON = [("content-type", b"application/json")]


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(proc.name))
    return found


def _kill_tree(worker) -> None:
    """kill -9 of the worker, the archiver it started and its embedded broker, all at once."""
    pids = [worker.proc.pid, *_children(worker.proc.pid), worker.embedded_broker_pid()]
    for pid in filter(None, pids):
        os.kill(pid, signal.SIGKILL)
    worker.wait(10)


def _probes(people: list[dict], day: str, tag: str) -> list[dict]:
    return [settlement([line("333.33"), line("80", "02")], psn_no=p["input"]["psn_no"], acct_used_flag="1", day=day,
                       msgid=f"{tag}{i:03d}") for i, p in enumerate(people)]


def _started(spawn, env: dict) -> tuple:
    w = spawn(None, extra_env=env)
    return w, w.wait_started(90)


def test_stop_and_start_with_sigterm_and_with_kill9_of_the_whole_tree_keeps_everything(spawn, tmp_path):
    env = {"YIBAO_ARCHIVE_DIR": str(tmp_path / "archive"), "YIBAO_SNAPSHOT_DIR": str(tmp_path / "snapshots"),
           "YIBAO_SNAPSHOT_EVERY": "300"}
    people = [person(f"5301021970{i:04d}0011", balc="3000", retired=i % 4 == 0) for i in range(24)]
    bills1, bills2 = mixed_bills(people, 1500, "SS1-"), mixed_bills(people, 1500, "SS2-")
    probes1, probes2 = _probes(people, "2024-12-30", "PR1-"), _probes(people, "2024-12-31", "PR2-")
    history = hospitals() + people + bills1

    first, bootstrap = _started(spawn, env)
    answered = send(bootstrap, history, tmp_path)
    assert len(answered) == len(history), first.log()
    assert first.stop() == 0, first.log()

    second, bootstrap = _started(spawn, env)
    assert "restored" in second.log() and "0 placeholders" in second.log(), second.log()
    resent = bills1[::50]
    assert send(bootstrap, resent, tmp_path) == {b["msgid"]: answered[b["msgid"]] for b in resent}
    got = send(bootstrap, probes1, tmp_path)
    want = offline(history + probes1)[-len(probes1):]
    assert [got[p["msgid"]] for p in probes1] == want  # balances and year totals as before the stop
    answered.update(got)
    answered.update(send(bootstrap, bills2, tmp_path))
    time.sleep(5)  # quiet: the archiver has flushed and recorded the committed offsets
    _kill_tree(second)
    assert list((tmp_path / "archive").glob("*/*/*/*.avro.open")), "the kill left no segment open: nothing tried"

    third, bootstrap = _started(spawn, env)
    assert "records of segments a crash left open sealed first" in third.log(), third.log()
    resent = bills1[7::100] + bills2[3::100] + probes1[::5]
    assert send(bootstrap, resent, tmp_path) == {b["msgid"]: answered[b["msgid"]] for b in resent}
    got = send(bootstrap, probes2, tmp_path)
    want = offline(history + probes1 + bills2 + probes2)[-len(probes2):]
    assert [got[p["msgid"]] for p in probes2] == want
    answered.update(got)
    assert "rebuilt from the snapshot at offset" in third.log(), third.log()

    burst = mixed_bills(people, 3000, "SS3-")
    produce(bootstrap, [(topics.REQUESTS, b["input"]["data"]["psn_no"].encode(), encode(b), JSON) for b in burst])
    before = wait_for_results(bootstrap, [b["msgid"] for b in burst], at_least=300, idle=0.2)
    _kill_tree(third)  # in the middle of the burst
    assert sum(b["msgid"] in before for b in burst) < len(burst), "the burst ended before the kill"

    fourth, bootstrap = _started(spawn, env)
    again = send(bootstrap, burst, tmp_path, timeout=240)
    assert len(again) == len(burst)
    assert all(again[m] in seen for m, seen in before.items() if m in again)  # the same answer after the kill
    results = results_by_msgid(bootstrap)
    assert all(len(results[b["msgid"]]) == 1 for b in burst)  # one distinct result each
    paid = {}
    for seen in results.values():
        doc = json.loads(next(iter(seen)), parse_float=Decimal)
        if doc["infcode"] == 0 and "setlinfo" in (doc["output"] or {}):
            paid[doc["output"]["setlinfo"]["setl_id"]] = doc["output"]["setlinfo"]["fund_pay_sumamt"]
    cleared = {}
    for r in read_all(bootstrap, topics.CLEARING):
        if not topics.is_filler(r.headers) and not any(k == "yb-record" for k, _ in r.headers):
            entry = codec.decode_record("clearing_entry", r.value)
            cleared[entry["setl_id"]] = entry["fund_pay_sumamt"]
    assert cleared == paid  # no clearing entry lost or made up, through two kills and three restores
    assert fourth.stop() == 0, fourth.log()

    lives = list((tmp_path / "archive").iterdir())
    assert len(lives) == 1, lives  # one history, restored and continued, not a folder per start
    check = subprocess.run([sys.executable, "-m", "streams.cli", "archive", "verify", str(lives[0])], cwd=ROOT,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
