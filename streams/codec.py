"""Bytes on the topics <-> events and results, by the message's `content-type` header.

JSON (`application/json`, the default) is what people and kcat send; results go back in the
encoding their request came in.
"""
from __future__ import annotations

from schemas.serde import BadEvent, decode_event, encode

JSON = "application/json"
SUPPORTED = (JSON,)


def content_type(headers: dict[str, bytes]) -> str:
    raw = headers.get("content-type")
    return raw.decode("latin-1").split(";")[0].strip().lower() if raw else JSON


def decode(value: bytes, ctype: str):
    """The validated event, or a BadEvent saying why not."""
    if ctype != JSON:
        return BadEvent(None, None, f"content-type {ctype!r} is not supported: use one of {', '.join(SUPPORTED)}")
    return decode_event(value)


def encode_result(result: dict, ctype: str) -> bytes:
    return encode(result)
