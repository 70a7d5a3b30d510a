"""Topic names, partition counts and configs: declared once here, created and checked at start-up.

Keys: `settle.requests` and `insured.commands` by `psn_no` (institutions by `fixmedins_code`), so one
person's events keep their order; `ledger.ops` by person, written to their home partition (binds to
partition 0, and ledger-group moves between partitions: streams/groups.py); `settle.results` by
`fixmedins_code`, for the billing system that sent the request. `clearing.entries` by institution
(`fixmedins_code`, at its partition by Kafka's default partitioner): each settlement's and cancel's
entry, an institution's reconciliation (3201), and a month's close written to every partition;
`clearing.statements` by statement id.
"""
from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

REQUESTS = "settle.requests"
COMMANDS = "insured.commands"
LEDGER_OPS = "ledger.ops"
RESULTS = "settle.results"
REJECTED = "settle.rejected"
CLEARING = "clearing.entries"
STATEMENTS = "clearing.statements"

WEEK_MS = str(7 * 24 * 3600 * 1000)
# The DLQ keeps the original bytes of what it rejects, oversized input included, up to this size
# (beyond it the body is cut and the header yb-truncated gives the original length).
REJECTED_MAX_BYTES = 16 * 1024 * 1024
# ledger.ops is the ledger's changelog (state is replayed from it), so it is never deleted.
CONFIGS = {
    REQUESTS: {"retention.ms": WEEK_MS},
    COMMANDS: {"retention.ms": "-1"},
    LEDGER_OPS: {"retention.ms": "-1"},
    RESULTS: {"retention.ms": WEEK_MS},
    REJECTED: {"retention.ms": WEEK_MS, "max.message.bytes": str(REJECTED_MAX_BYTES + 65536)},
    CLEARING: {"retention.ms": "-1"},  # the clearing agent's changelog too: its state is replayed from it
    STATEMENTS: {"retention.ms": "-1"},
}
ALL = tuple(CONFIGS)
CONSUMED = (REQUESTS, COMMANDS, LEDGER_OPS, CLEARING)  # what the service's agents read (its consumer group)
INTERNAL = (LEDGER_OPS, CLEARING)  # the agents' changelogs: written and read only by the service

# Records that only take an offset, skipped by every reader: a restore's placeholder for an offset its
# archive lacked (streams/restore.py), and the archiver's checkpoint marker on the internal topics
# (streams/archiver.py).
FILLER = "yb-filler"
PLACEHOLDER = (FILLER, b"placeholder")
MARKER = (FILLER, b"marker")


def is_filler(headers) -> bool:
    return any(k == FILLER for k, _ in headers or ())


async def ensure_topics(bootstrap: str, partitions: int, **kafka) -> None:
    """Create missing topics; stop loudly when an existing one has another partition count
    (a changed count would move people to other ledger partitions)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, partitions, 1, topic_configs=cfg)
                   for name, cfg in CONFIGS.items() if name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
        for meta in await admin.describe_topics(list(ALL)):
            count = len(meta.get("partitions") or [])
            if count != partitions:
                raise SystemExit(f"topic {meta.get('topic')} has {count} partitions, configured "
                                 f"YIBAO_PARTITIONS={partitions}: they must agree")
    finally:
        await admin.close()
