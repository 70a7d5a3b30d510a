"""Bytes on the topics <-> events, results and internal records, by the message's `content-type`.

Requests arrive as JSON (`application/json`, the default: what people and kcat send) or Avro
(`avro/binary`, schemas/avro/settle_request.avsc); each result goes back in its request's encoding.
The internal and operational topics (`ledger.ops`, `settle.rejected`, `clearing.entries`) are Avro.
"""
from __future__ import annotations

from schemas import avro
from schemas.serde import BadEvent, decode_event, encode

JSON = "application/json"
AVRO = avro.CONTENT_TYPE
SUPPORTED = (JSON, AVRO)
AVRO_HEADERS = [("content-type", AVRO.encode())]


def content_type(headers: dict[str, bytes]) -> str:
    raw = headers.get("content-type")
    return raw.decode("latin-1").split(";")[0].strip().lower() if raw else JSON


def decode(value: bytes, ctype: str):
    """The validated event, or a BadEvent saying why not."""
    if ctype == JSON:
        return decode_event(value)
    if ctype == AVRO:
        return avro.decode_event(value)
    return BadEvent(None, None, f"content-type {ctype!r} is not supported: use one of {', '.join(SUPPORTED)}")


def encode_result(result: dict, ctype: str) -> bytes:
    return avro.encode_result(result) if ctype == AVRO else encode(result)


def encode_record(name: str, record: dict) -> bytes:
    return avro.encode_record(name, record)


def decode_record(name: str, value: bytes) -> dict:
    return avro.decode_record(name, value)
