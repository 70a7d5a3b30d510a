"""How an agent takes its input (streams.agents.batches), with stand-ins for Faust's app and channel:
what it hands out, what it acknowledges unhandled, and what it tracks so a rebalance waits for it."""
import asyncio
from types import SimpleNamespace

from streams.agents import batches


class Message:  # hashable by identity, as Faust's is
    def __init__(self, offset: int, generation: int) -> None:
        self.topic, self.offset, self.generation_id, self.tracked = "ledger.ops", offset, generation, False


class Event:
    def __init__(self, offset: int, generation: int) -> None:
        self.message = Message(offset, generation)
        self.acked = False

    def ack(self) -> None:
        self.acked = True


def _app(generation: int = 2, active: bool = True):
    return SimpleNamespace(consumer=SimpleNamespace(unacked=set()), consumer_generation_id=generation,
                           topics=SimpleNamespace(acks_enabled_for=lambda topic: True),
                           flow_control=SimpleNamespace(is_active=lambda: active))


def _channel(events: list[Event]):
    queue: asyncio.Queue = asyncio.Queue()
    for e in events:
        queue.put_nowait(e)
    return SimpleNamespace(queue=queue, __anext__=queue.get)


async def _next(it):
    return await asyncio.wait_for(it.__anext__(), 1)


async def test_a_batch_is_what_arrived_up_to_its_size_and_each_event_is_tracked_until_acked():
    events = [Event(i, 2) for i in range(5)]
    app = _app()
    it = batches(app, _channel(events), 3, 0.0)
    first, second = await _next(it), await _next(it)
    assert [e.message.offset for e in first] == [0, 1, 2] and [e.message.offset for e in second] == [3, 4]
    assert all(e.message.tracked and not e.acked for e in events)  # the caller acks, once outputs are acknowledged
    assert {e.message for e in events} == app.consumer.unacked  # so a rebalance waits for them


async def test_events_fetched_before_a_rebalance_are_acked_unhandled_as_faust_does():
    stale, live = [Event(0, 1), Event(1, 1)], [Event(2, 2)]
    app = _app(generation=2)
    batch = await _next(batches(app, _channel(stale + live), 10, 0.0))
    assert batch == live and all(e.acked for e in stale) and not live[0].acked
    assert app.consumer.unacked == {live[0].message}


async def test_nothing_is_handed_out_while_flow_control_is_paused():
    events = [Event(0, 2), Event(1, 2)]
    it = batches(_app(active=False), _channel(events), 10, 0.0)
    try:
        await _next(it)
        raise AssertionError("a batch was handed out while paused")
    except asyncio.TimeoutError:
        pass
    assert all(e.acked for e in events)
