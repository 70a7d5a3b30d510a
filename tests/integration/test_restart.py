"""Stopping the worker mid-stream (SIGTERM, then kill -9) loses nothing and answers each request once.

The ledger's state is rebuilt from ledger.ops on start (from the newest snapshot, written every 500
records here, and the records after it), so after any stop every request gets exactly one distinct
result and the totals are those of the offline run.
"""
import signal

from schemas.serde import encode
from tests.integration.harness import Worker, mixed_bills, offline, produce, send, wait_for_results
from tests.support import hospitals, line, person, settlement

JSON_H = [("content-type", b"application/json")]


def _produce_bills(bootstrap, bills) -> None:
    produce(bootstrap, [("settle.requests", b["input"]["data"]["psn_no"].encode(), encode(b), JSON_H) for b in bills])


def _stop_midstream(worker: Worker, bootstrap: str, bills: list[dict], sig: int) -> None:
    _produce_bills(bootstrap, bills)
    msgids = [b["msgid"] for b in bills]
    seen = wait_for_results(bootstrap, msgids, at_least=200, idle=0.2)
    assert sum(m in seen for m in msgids) < len(bills), "the worker finished before it could be stopped mid-stream"
    worker.signal(sig)
    code = worker.wait(60)
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL), worker.log()


def test_sigterm_then_kill9_each_request_answered_once_and_totals_equal_offline(broker, spawn, tmp_path):
    env = {"YIBAO_SNAPSHOT_DIR": str(tmp_path / "snapshots"), "YIBAO_SNAPSHOT_EVERY": "500"}
    people = [person(f"RST{i:04d}", balc="2000", retired=i % 3 == 0, brdy=f"19{50 + i % 30}-03-0{1 + i % 8}")
              for i in range(40)]
    first = spawn(broker.bootstrap, extra_env=env)
    first.wait_started()
    send(broker.bootstrap, hospitals() + people, tmp_path, timeout=90)

    batch1, batch2 = mixed_bills(people, 6000, "T"), mixed_bills(people, 6000, "K")
    _stop_midstream(first, broker.bootstrap, batch1, signal.SIGTERM)

    second = spawn(broker.bootstrap, extra_env=env)
    second.wait_started()
    _stop_midstream(second, broker.bootstrap, batch2, signal.SIGKILL)

    third = spawn(broker.bootstrap, extra_env=env)
    third.wait_started()
    msgids = [b["msgid"] for b in batch1 + batch2]
    seen = wait_for_results(broker.bootstrap, msgids, at_least=len(msgids), timeout=180)
    expected = offline(hospitals() + people + batch1 + batch2)[len(hospitals()) + len(people):]
    assert [len(seen.get(m, ())) for m in msgids] == [1] * len(msgids)  # one distinct result each
    assert [next(iter(seen[m])) for m in msgids] == expected

    probes = [settlement([line("777")], psn_no=p["input"]["psn_no"], acct_used_flag="1", day="2024-12-31")
              for p in people]
    got = send(broker.bootstrap, probes, tmp_path)
    want = offline(hospitals() + people + batch1 + batch2 + probes)[-len(probes):]
    assert [got[p["msgid"]] for p in probes] == want  # balances and year totals equal the offline run
    assert third.stop() == 0, third.log()
    # the last start began at snapshots (written by the workers before it, the last one killed), not at offset 0
    assert "rebuilt from the snapshot at offset" in third.log(), third.log()
    assert not any("not used" in w.log() for w in (first, second, third))
