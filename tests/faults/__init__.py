"""The fault suite: hostile input and broken infrastructure, thrown at the router, the offline path and
the running service, with the guarantee each test defends in its module docstring.

- corpus.py: the hostile-input generator (named hand-written categories, hypothesis strategies, a
  seeded mutator) and the contract a rejected message is held to.
- test_router_fuzz.py: the pure router never raises and dead-letters or routes every message.
- test_offline_fuzz.py: `yibao settle` answers every line of a hostile file and hostile lines change
  no state.
- test_poison_broker.py: on the real broker, poison is dead-lettered or answered, the worker never
  exits, and valid requests around it get their offline results.
- test_msgid_reuse.py: a msgid reused by another person on another partition: both settled, once each,
  with ids that cannot collide; a changed re-send of the same person is refused.
- test_two_workers.py: two workers, one killed with -9 mid-burst: one result per request, totals
  equal to offline.
- test_broker_loss.py: the broker dying under the worker.
- test_ledger_bug.py: the ledger failing on one op stops the worker before the batch is acknowledged;
  a restart answers every request once.
"""
