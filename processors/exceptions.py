"""Operating errors of settlement: a request the rules refuse, with a code and a reason a person can act on.

These are expected outcomes (they become error results with infcode -1), not bugs. Broken
invariants are reported by `InvariantBroken`, which must never be caught and turned into a result.
"""
from __future__ import annotations


class SettlementRefused(Exception):
    """The rules cannot settle this request as sent. `code` is stable; `reason` is for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class PolicyError(Exception):
    """A policy file is missing, malformed or inconsistent: start-up must stop."""


class InvariantBroken(AssertionError):
    """A money invariant does not hold: a bug, never an input problem."""


def check(condition: bool, message: str) -> None:
    """Assert an invariant in a way `python -O` cannot strip."""
    if not condition:
        raise InvariantBroken(message)
