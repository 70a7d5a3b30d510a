"""Faust's aiokafka transport with a short consumer fetch wait and a longer retry backoff, registered
as the `yibao-kafka://` scheme.

Faust's driver hard-codes `fetch_max_wait_ms=1500`. The embedded broker holds a fetch that finds no
data for about half its max wait even when data arrives meanwhile, so each hop (request -> router,
router -> ledger) added up to ~0.75 s: at 1,000 settlements/s the bench measured p50/p99 5.0 s /
6.6 s with 1500 ms, and 0.59 s / 1.2 s with 50 ms. A short wait costs a real Kafka cluster only
more fetch requests while idle.

Reconnecting: aiokafka (0.14) has no reconnect backoff of its own; its fetcher, group coordinator,
producer sender and metadata waits retry after `retry_backoff_ms`, and each retry tries to connect
again. Its default, 100 ms, made a worker whose broker was gone try about 37 connections and write
about 75 error lines a second. Faust passes no `retry_backoff_ms`, so this transport sets it on
the clients it makes: with RETRY_BACKOFF_MS = 1000 (the ceiling of Kafka's own reconnect backoff) a
worker waits for its broker at a few attempts a second. The cost when the broker is up: a retriable
error (a rebalance in progress, a leader moving) is retried after 1 s instead of 0.1 s.
"""
from __future__ import annotations

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as driver

SCHEME = "yibao-kafka"
FETCH_MAX_WAIT_MS = 50
RETRY_BACKOFF_MS = 1000


class ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        # read by aiokafka when the consumer starts its fetcher and coordinator
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        consumer._retry_backoff_ms = RETRY_BACKOFF_MS
        consumer._client._retry_backoff = RETRY_BACKOFF_MS / 1000  # the client's metadata waits
        return consumer


class Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Producer(driver.Producer):
    def _settings_default(self):
        return {**super()._settings_default(), "retry_backoff_ms": RETRY_BACKOFF_MS}


class Transport(driver.Transport):
    Consumer = Consumer
    Producer = Producer


TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
