"""Settlement ids: deterministic (a replay gives the same id) and unique whatever the senders do.

A msgid is unique per person (see `processors.ledger`): two people's requests may carry the same
msgid, and each is settled. The id of what they create must still differ, because clearing is
idempotent by `setl_id`. So an id is derived from the pair (person, msgid): a 112-bit BLAKE2b digest
of an unambiguous encoding of both (the length of `psn_no` comes first, so no two pairs read the
same), in hex. Two pairs collide only if BLAKE2b does (a birthday search needs ~2^56 tries). The id
fits the national 30 characters and carries no personal number: it is safe in logs.
"""
from __future__ import annotations

import hashlib


def settlement_id(kind: str, psn_no: str, msgid: str) -> str:
    """`kind` is "S" for a settlement, "C" for a cancel; then 28 hex digits."""
    pair = f"{len(psn_no)}:{psn_no}{msgid}".encode("utf-8")
    return kind + hashlib.blake2b(pair, digest_size=14).hexdigest()
