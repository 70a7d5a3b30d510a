"""End to end with kcat, a third-party Kafka client: produce a JSON settlement, read its result.

kcat comes from Debian's package; the test installs it when it can (root with apt-get), and
otherwise skips with the reason printed in the test summary. Debian's kcat 1.7.1 is linked against
librdkafka 2.0.2, which cannot parse the embedded broker's ApiVersions v3 reply ("Protocol read buffer
underflow for ApiVersion v3"); librdkafka 2.16 can. So when plain kcat fails that way, the same
kcat binary runs on the newer librdkafka shipped in the confluent-kafka wheel (a test dependency),
through LD_LIBRARY_PATH. Against a real Kafka cluster plain kcat works.
"""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from schemas.serde import encode
from tests.support import line, person, settlement


def _kcat() -> str:
    path = shutil.which("kcat")
    if path:
        return path
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("kcat is not installed and cannot be installed here (needs root and apt-get)")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "kcat"]):
        done = subprocess.run(cmd, capture_output=True, timeout=300, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if done.returncode != 0 and cmd[1] == "install":
            pytest.skip(f"kcat could not be installed from Debian's packages: {done.stderr.decode()[-300:]}")
    return shutil.which("kcat") or pytest.skip("kcat still not found after apt-get install kcat")


def _runtime(kcat: str, bootstrap: str, tmp_path) -> dict:
    """The environment kcat talks to this broker with (see the module docstring)."""
    try:
        plain = subprocess.run([kcat, "-b", bootstrap, "-L", "-m", "3"], capture_output=True, timeout=15)
        if plain.returncode == 0:
            return dict(os.environ)
        why = plain.stderr.decode()[-200:]
    except subprocess.TimeoutExpired as e:
        why = (e.stderr or b"").decode()[-200:] or "no answer"
    import confluent_kafka
    libs = Path(confluent_kafka.__file__).parent.parent / "confluent_kafka.libs"
    lib = next(libs.glob("librdkafka-*.so.1"), None)
    if lib is None:
        pytest.skip(f"kcat cannot talk to the embedded broker ({why}) and no newer "
                    "librdkafka was found in the confluent-kafka wheel")
    (tmp_path / "librdkafka.so.1").symlink_to(lib)
    env = dict(os.environ, LD_LIBRARY_PATH=str(tmp_path))
    print(f"kcat runs on {lib.name}: Debian's librdkafka cannot parse this broker's ApiVersions v3 reply")
    return env


def _produce(kcat, env, bootstrap, topic, key, event) -> None:
    subprocess.run([kcat, "-b", bootstrap, "-P", "-t", topic, "-k", key, "-H", "content-type=application/json"],
                   input=encode(event) + b"\n", check=True, timeout=30, env=env)


def _result(kcat, env, bootstrap, msgid, timeout=60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run([kcat, "-b", bootstrap, "-C", "-t", "settle.results", "-o", "beginning", "-e", "-q"],
                             capture_output=True, timeout=30, env=env).stdout
        for raw in out.splitlines():
            if raw.startswith(b"{") and json.loads(raw).get("inf_refmsgid") == msgid:
                return json.loads(raw)
        time.sleep(0.5)
    raise AssertionError(f"no result for {msgid} read by kcat")


def test_kcat_settles_and_reads_the_result(broker, worker, tmp_path):
    kcat = _kcat()
    env = _runtime(kcat, broker.bootstrap, tmp_path)
    who = person("KCAT00000001", retired=True, brdy="1952-01-15")
    _produce(kcat, env, broker.bootstrap, "insured.commands", "KCAT00000001", who)
    assert _result(kcat, env, broker.bootstrap, who["msgid"])["infcode"] == 0
    bill = settlement([line("400"), line("100", "02")], psn_no="KCAT00000001", level=1, msgid="KCAT-2207-1")
    _produce(kcat, env, broker.bootstrap, "settle.requests", "KCAT00000001", bill)
    info = _result(kcat, env, broker.bootstrap, "KCAT-2207-1")["output"]["setlinfo"]
    # seed 001 问题四, the Kunming example at level 1: (500-20-5)×70% = 332.5
    assert info["hifp_pay"] == 332.5 and info["psn_cash_pay"] == 167.5
