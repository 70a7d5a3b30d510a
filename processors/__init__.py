"""Pure settlement logic: policies as data, benefit rules, and the in-memory ledger state machine.

Nothing here does I/O, reads a clock, or imports Faust/aiokafka: every function takes the request,
the policy and the person's running totals, and returns what changes.
"""
