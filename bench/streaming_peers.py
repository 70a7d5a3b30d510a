"""The peer pipelines of `bench/streaming.py`, each run as its own process: SRC topic -> DST topic.

    python bench/streaming_peers.py {raw,faust,quix} --bootstrap HOST:PORT --src T --dst T --group G [--batch1]

  raw    aiokafka: `getmany` a batch, `producer.send` each record without awaiting it, then one
         `gather` of the batch's delivery futures (at least once, like the yibao agents);
  faust  the idiomatic Faust ledger: a per-event agent (`async for key, value in stream.items()`),
         one Table write per event (memory store, changelog on), one `await dst.send(...)` per event;
         `--batch1` sets `producer_max_batch_size=1` (BROKER.md: needed for exact table recovery on
         the embedded broker);
  quix   quix-streams `app.dataframe(src).apply(...).to_topic(dst)`, bytes in, bytes out.

Each forwards the value unchanged (keyed as received): these measure the frameworks, not work done
on the events. Only the chosen mode's library is imported, so `quix` can run under another
interpreter (quix-streams pins pydantic and confluent-kafka below what yibao uses). SIGTERM/SIGINT
stop a peer cleanly. Not a runtime part of yibao.
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile


def raw(args) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def pipe() -> None:
        consumer = AIOKafkaConsumer(args.src, bootstrap_servers=args.bootstrap, group_id=args.group,
                                    auto_offset_reset="earliest", enable_auto_commit=True,
                                    session_timeout_ms=10_000, max_poll_records=5000)
        producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all", linger_ms=5,
                                    max_batch_size=256 * 1024)
        await consumer.start()
        await producer.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=100, max_records=5000)
                futures = []
                for records in batches.values():
                    for m in records:
                        futures.append(await producer.send(args.dst, m.value, key=m.key))
                if futures:
                    await asyncio.gather(*futures)
        finally:
            await producer.stop()
            await consumer.stop()

    asyncio.run(pipe())


def faust_ledger(args) -> None:
    import faust

    extra = {"producer_max_batch_size": 1} if args.batch1 else {}
    app = faust.App(
        args.group, broker=f"kafka://{args.bootstrap}", store="memory://",
        key_serializer="raw", value_serializer="raw",
        topic_partitions=args.partitions, topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10, broker_rebalance_timeout=10,  # BROKER.md, point 6
        web_enabled=False, datadir=tempfile.mkdtemp(prefix=f"{args.group}-"), **extra,
    )
    src = app.topic(args.src, key_type=bytes, value_type=bytes)
    dst = app.topic(args.dst, key_type=bytes, value_type=bytes)
    visits = app.Table("visits", default=int, partitions=args.partitions)

    @app.agent(src)
    async def ledger(stream):
        async for key, value in stream.items():
            person = key.decode() if key else ""
            visits[person] += 1
            await dst.send(key=key, value=value)

    worker = faust.Worker(app, loglevel="warning", override_logging=True)
    worker.execute_from_commandline()


def quix(args) -> None:
    from quixstreams import Application

    app = Application(broker_address=args.bootstrap, consumer_group=args.group, auto_offset_reset="earliest",
                      loglevel="WARNING", auto_create_topics=False, use_changelog_topics=False,
                      state_dir=tempfile.mkdtemp(prefix=f"{args.group}-state-"))
    src = app.topic(args.src, key_deserializer="bytes", value_deserializer="bytes")
    dst = app.topic(args.dst, key_serializer="bytes", value_serializer="bytes")
    app.dataframe(src).apply(lambda value: value).to_topic(dst)
    app.run()  # stops on SIGTERM/SIGINT


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("raw", "faust", "quix"))
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--group", required=True, help="consumer group (the Faust app id)")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--batch1", action="store_true", help="faust: producer_max_batch_size=1")
    args = ap.parse_args()
    {"raw": raw, "faust": faust_ledger, "quix": quix}[args.mode](args)


if __name__ == "__main__":
    main()
