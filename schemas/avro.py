"""Avro on the topics: the schemas in `schemas/avro/*.avsc` and the codecs that use them.

Wire format: a message value is ONE Avro datum in binary encoding, written schemaless: no object
container header, no sync markers, no schema id or Confluent magic byte. Producer and consumer
both hold the same `.avsc` (the schema is the contract), and the message says it is Avro with the
header `content-type: avro/binary`. A datum must fill the message exactly: leftover bytes are an
error, not ignored.

| topic                                  | schema           | codec                                 |
|----------------------------------------|------------------|---------------------------------------|
| `settle.requests`, `insured.commands`  | `settle_request` | `decode_request` / `encode_request`   |
| `settle.results`                       | `settle_result`  | `encode_result` / `decode_result`     |
| `settle.rejected`                      | `rejected`       | `encode_record` / `decode_record`     |
| `ledger.ops`                           | `ledger_op`      | `encode_record` / `decode_record`     |
| `clearing.entries`                     | `clearing_entry` | `encode_record` / `decode_record`     |

Value forms follow the JSON wire (schemas/models.py), so an Avro request decodes to the very dict
its JSON twin parses to and pydantic validates it the same way:
- money is `bytes` with logicalType `decimal`, precision 16, scale 2 (`decimal.Decimal`, exact);
  `pool_prop_selfpay` and `feedetail[].cnt` have scale 4;
- dates (`brdy`, `begndate`, `enddate`) are strings `yyyy-MM-dd` and `setl_time` the string
  `yyyy-MM-dd HH:mm:ss`, exactly as in JSON: pydantic parses and checks them, with its field-named
  errors;
- every field the models do not require is `["null", T]` with default null, and null means absent:
  `decode_request` drops it so the pydantic default applies (a JSON `null` and an absent field
  read the same here);
- `input` is a union of one record per kind of input; `encode_request` picks the branch from
  `infno`, and the record's name never appears in the decoded dict.

Schemas are parsed once (`load_schemas`, cached); a broken one raises `SchemaError` naming its file.
Reading raises `AvroDecodeError` on anything that is not one whole datum of the schema; writing
raises `AvroEncodeError` naming the field.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
from decimal import Decimal, InvalidOperation
from io import BytesIO
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from pydantic import ValidationError

from .models import (
    EVENT,
    INFNOS,
    AccountBindingEvent,
    AccountContributionEvent,
    AccountCreditEvent,
    AccountQueryEvent,
    AccumulatorEvent,
    CancelRequest,
    ClearingCloseEvent,
    DiseaseFilingEvent,
    InstitutionEvent,
    ManualClaimEvent,
    PersonEvent,
    ReconcileEvent,
    RemoteFilingEvent,
    SettlementRequest,
)
from .serde import BadEvent, encode, explain

SCHEMA_DIR = Path(__file__).with_name("avro")
CONTENT_TYPE = "avro/binary"
SCHEMAS = ("settle_request", "settle_result", "rejected", "ledger_op", "clearing_entry", "clearing_statement")
RECORDS = ("rejected", "ledger_op", "clearing_entry", "clearing_statement")  # the plain records of encode_record/decode_record

_INPUT_BRANCH = {  # infno -> the record of settle_request's `input` union, from the models' infno literals
    infno: branch
    for model, branch in (
        (SettlementRequest, "yibao.SettlementInput"), (CancelRequest, "yibao.CancelInput"),
        (PersonEvent, "yibao.PersonData"), (InstitutionEvent, "yibao.InstitutionData"),
        (DiseaseFilingEvent, "yibao.DiseaseFilingData"), (AccumulatorEvent, "yibao.AccumulatorData"),
        (AccountCreditEvent, "yibao.AccountCreditData"), (AccountBindingEvent, "yibao.AccountBindingData"),
        (AccountContributionEvent, "yibao.AccountContributionData"), (RemoteFilingEvent, "yibao.RemoteFilingData"),
        (AccountQueryEvent, "yibao.AccountQueryData"), (ClearingCloseEvent, "yibao.ClearingCloseData"),
        (ReconcileEvent, "yibao.ReconcileData"), (ManualClaimEvent, "yibao.ManualClaimInput"),
    )
    for infno in model.model_fields["infno"].annotation.__args__
}
_RESULT_KEYS = ("infno", "inf_refmsgid", "infcode", "err_msg", "warn_msg", "output")  # as ledger.ok/error
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


class SchemaError(Exception):
    """An .avsc file is missing, not JSON, or not a valid Avro schema: the service must not start."""


class AvroDecodeError(ValueError):
    """The bytes are not one whole datum of the schema (truncated, garbage, another schema, extra bytes)."""


class AvroEncodeError(ValueError):
    """The value does not fit the schema; the message names the field."""


# -- schemas ------------------------------------------------------------------------------------


def load_schemas(directory: Path | str | None = None) -> Mapping[str, dict]:
    """Every `.avsc` of `directory` (default `schemas/avro/`) parsed by fastavro, by file stem.

    The default directory is read, parsed and compiled into codecs once; call this at service start
    so that a broken schema stops it there. Raises SchemaError naming the file.
    """
    if directory is None:
        return _default()[0]
    return _load(Path(directory))[0]


@functools.cache
def _default() -> tuple[Mapping[str, dict], Mapping[str, "_Codec"]]:
    return _load(SCHEMA_DIR)


def _codecs() -> Mapping[str, "_Codec"]:
    return _default()[1]


def _load(directory: Path) -> tuple[Mapping[str, dict], Mapping[str, "_Codec"]]:
    parsed: dict[str, dict] = {}
    codecs: dict[str, _Codec] = {}
    for path in sorted(directory.glob("*.avsc")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise SchemaError(f"Avro schema {path}: cannot be read as JSON: {e}") from e
        try:
            parsed[path.stem] = parse_schema(doc, named_schemas={})
            codecs[path.stem] = _Codec(doc, parsed[path.stem])
        except Exception as e:  # fastavro raises SchemaParseError, UnknownType, ValueError, KeyError...
            raise SchemaError(f"Avro schema {path}: invalid: {type(e).__name__}: {e}") from e
    missing = [name for name in SCHEMAS if name not in parsed]
    if missing:
        raise SchemaError(f"Avro schemas missing from {directory}: {', '.join(n + '.avsc' for n in missing)}")
    return MappingProxyType(parsed), MappingProxyType(codecs)


# -- requests -----------------------------------------------------------------------------------


def decode_request(data: bytes) -> dict:
    """A settle_request datum as the JSON-shaped event dict (absent optional fields left out).

    The dict is not validated: pass it to `schemas.models.EVENT.validate_python`, or use
    `decode_event`, which does and explains a refusal like the JSON path.
    """
    return _read("settle_request", data, sparse=True)


def encode_request(event: dict) -> bytes:
    """The settle_request datum of a JSON-shaped event dict (for clients and tests).

    Money may be Decimal, int, float (taken by its shortest repr, i.e. as the JSON text read) or a
    numeric string; it must fit 2 decimal places (cnt: 4) and 16 digits.
    """
    if not isinstance(event, dict):
        raise AvroEncodeError(f"an event is a dict, not {type(event).__name__}")
    infno = event.get("infno")
    branch = _INPUT_BRANCH.get(infno) if isinstance(infno, str) else None
    if branch is None:
        raise AvroEncodeError(f"infno: {infno!r} is not one of {', '.join(INFNOS)}")
    if "input" in event:
        event = {**event, "input": (branch, event["input"])}
    return _write("settle_request", _prepare(_codecs()["settle_request"].plain, event, ""))


def decode_event(data: bytes):
    """The Avro twin of `schemas.serde.decode_event`: the validated event, or a BadEvent saying why not
    (the same reason text the JSON path gives for the same content)."""
    try:
        doc = decode_request(data)
    except AvroDecodeError as e:
        return BadEvent(None, None, str(e))
    try:
        return EVENT.validate_python(doc)
    except ValidationError as e:
        return explain(encode(doc), e)


# -- results ------------------------------------------------------------------------------------


def encode_result(result: dict) -> bytes:
    """The settle_result datum of a result envelope as `processors.ledger.ok/error` build it.

    Strict: a key the schema does not have is an error (never silently dropped), so a new output
    field fails here until settle_result.avsc has it.
    """
    try:
        output = result.get("output")
    except AttributeError:
        raise AvroEncodeError(f"a result is a dict, not {type(result).__name__}") from None
    if output is not None:
        kind = ("yibao.SettlementOutput" if isinstance(output, dict) and "setlinfo" in output else
                "yibao.AccountOutput" if isinstance(output, dict) and "history" in output else
                "yibao.ReconcileOutput" if isinstance(output, dict) and "stmt_rslt" in output else "yibao.AckOutput")
        result = {**result, "output": (kind, output)}
    return _write("settle_result", result)


def decode_result(data: bytes) -> dict:
    """A settle_result datum as the result envelope: the six envelope keys always present (null
    included), absent optional fields of the output left out."""
    sparse = _read("settle_result", data, sparse=True)
    return {key: sparse.get(key) for key in _RESULT_KEYS}


# -- the other records --------------------------------------------------------------------------


def encode_record(name: str, record: dict) -> bytes:
    """A `rejected`, `ledger_op`, `clearing_entry` or `clearing_statement` datum; strict about unknown keys."""
    return _write(_record_name(name), record)


def decode_record(name: str, data: bytes) -> dict:
    """A `rejected`, `ledger_op`, `clearing_entry` or `clearing_statement` datum as a dict of every field (null
    included)."""
    return _read(_record_name(name), data)


def message_time(timestamp_ms: int) -> str:
    """A Kafka message timestamp (ms since the epoch) as `rejected_at` text: UTC ISO-8601 with
    milliseconds, e.g. 2024-11-01T09:00:00.000Z. Exact (integer arithmetic), no clock read."""
    moment = _EPOCH + dt.timedelta(milliseconds=timestamp_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _record_name(name: str) -> str:
    if name not in RECORDS:
        raise ValueError(f"{name!r} is not one of {', '.join(RECORDS)} (requests and results have their own codecs)")
    return name


# -- machinery ----------------------------------------------------------------------------------
#
# fastavro's own decimal conversion costs about 3 us per value written and 1.5 us per value read (a
# settlement result has 26). So each schema is also parsed with its decimal logicalTypes replaced by
# plain `bytes` (the very same bytes on the wire), and Decimals are converted here by functions
# compiled once per schema that visit only what holds a decimal (and, reading, what may hold a null
# to drop). The tests check the bytes against fastavro's own decimal codec.


class _Codec:
    __slots__ = ("raw", "plain", "to_wire", "from_wire", "from_wire_sparse")

    def __init__(self, doc: dict, parsed: dict) -> None:
        self.raw = parse_schema(_strip_decimals(doc), named_schemas={})
        self.plain = _expand(parsed, {})
        self.to_wire = _encoder(self.plain, "")
        self.from_wire = _decoder(self.plain, drop=False)
        self.from_wire_sparse = _decoder(self.plain, drop=True)  # absent optional fields left out


def _expand(schema: Any, named: dict[str, dict]) -> Any:
    """The parsed schema with each use of a named type by its name replaced by its definition, so the
    walks below see one plain structure (yibao's schemas are not recursive)."""
    if isinstance(schema, str):
        return named.get(schema, schema)
    if isinstance(schema, list):
        return [_expand(s, named) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("type") == "record":
        out = dict(schema, fields=[dict(f, type=_expand(f["type"], named)) for f in schema["fields"]])
        named[schema["name"]] = out
        return out
    if schema.get("type") == "array":
        return dict(schema, items=_expand(schema["items"], named))
    return schema


def _read(name: str, data: bytes, sparse: bool = False) -> dict:
    codec = _codecs()[name]
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise AvroDecodeError(f"not a {name} Avro datum: {type(data).__name__}, not bytes")
    stream = BytesIO(data)
    try:
        record = schemaless_reader(stream, codec.raw, None)
        convert = codec.from_wire_sparse if sparse else codec.from_wire
        if convert is not None:
            record = convert(record)
    except Exception as e:  # EOFError, UnicodeDecodeError, IndexError, ValueError, ... from fastavro
        raise AvroDecodeError(f"not a {name} Avro datum: {type(e).__name__}: {e}") from e
    left = len(data) - stream.tell()
    if left:
        raise AvroDecodeError(f"not a {name} Avro datum: {left} bytes left over after it")
    return record


def _write(name: str, record: Any) -> bytes:
    codec = _codecs()[name]
    if not isinstance(record, dict):
        raise AvroEncodeError(f"a {name} is a dict, not {type(record).__name__}")
    if codec.to_wire is not None:
        record = codec.to_wire(record)
    stream = BytesIO()
    try:
        schemaless_writer(stream, codec.raw, record, strict_allow_default=True)
    except Exception as e:  # ValueError, TypeError, ... from fastavro
        raise AvroEncodeError(f"cannot write {name}: {type(e).__name__}: {e}") from e
    return stream.getvalue()


def _strip_decimals(doc: Any) -> Any:
    if isinstance(doc, list):
        return [_strip_decimals(d) for d in doc]
    if isinstance(doc, dict):
        if doc.get("logicalType") == "decimal" and doc.get("type") == "bytes":
            return "bytes"
        return {k: _strip_decimals(v) for k, v in doc.items()}
    return doc


def _is_decimal(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("logicalType") == "decimal" and schema["type"] == "bytes"


def _record_branches(union: list, path: str) -> list[dict]:
    """The records of a union with more than one non-null branch; written from a (record name, value)
    tuple, read back as the plain dict, whose keys (every field of its record) tell which it is."""
    branches = [s for s in union if s != "null"]
    if any(not isinstance(s, dict) or s["type"] != "record" for s in branches) or \
            len({frozenset(f["name"] for f in s["fields"]) for s in branches}) != len(branches):
        raise SchemaError(f"{path.lstrip('.')}: a union of several types must be of records with different fields")
    return branches


def _encoder(schema: Any, path: str):
    """The function turning the Decimals of a value of `schema` into Avro decimal bytes, or None
    when `schema` holds no decimal."""
    if isinstance(schema, list):
        branches = [s for s in schema if s != "null"]
        if len(branches) == 1:
            inner = _encoder(branches[0], path)
            return None if inner is None else (lambda v: None if v is None else inner(v))
        by_name = {s["name"]: _encoder(s, path) for s in _record_branches(schema, path)}
        if not any(by_name.values()):
            return None

        def union(v):
            if isinstance(v, tuple) and len(v) == 2 and (enc := by_name.get(v[0])) is not None:
                return (v[0], enc(v[1]))
            return v  # null, or a mistake fastavro will name

        return union
    if _is_decimal(schema):
        return _decimal_codec(schema["scale"], schema["precision"], path.lstrip("."))[0]
    if not isinstance(schema, dict):
        return None
    if schema["type"] == "array":
        inner = _encoder(schema["items"], path + "[]")
        return None if inner is None else (lambda v: [inner(x) for x in v] if isinstance(v, list) else v)
    if schema["type"] != "record":
        return None
    fields = [(f["name"], enc) for f in schema["fields"] if (enc := _encoder(f["type"], f"{path}.{f['name']}"))]
    if not fields:
        return None

    def record(d):
        if not isinstance(d, dict):
            return d  # fastavro names the problem
        out = dict(d)
        for name, enc in fields:
            if name in out:
                out[name] = enc(out[name])
        return out

    return record


def _decoder(schema: Any, drop: bool):
    """The function turning Avro decimal bytes of a decoded value of `schema` into Decimals and, with
    `drop`, leaving null fields out of records; None when there is nothing to do."""
    if isinstance(schema, list):
        branches = [s for s in schema if s != "null"]
        if len(branches) == 1:
            inner = _decoder(branches[0], drop)
            return None if inner is None else (lambda v: None if v is None else inner(v))
        by_fields = {frozenset(f["name"] for f in s["fields"]): _decoder(s, drop) for s in _record_branches(schema, "")}
        if not any(by_fields.values()):
            return None

        def union(v):
            if v is None:
                return None
            dec = by_fields[frozenset(v)]
            return v if dec is None else dec(v)

        return union
    if _is_decimal(schema):
        return _decimal_codec(schema["scale"], schema["precision"], "")[1]
    if not isinstance(schema, dict):
        return None
    if schema["type"] == "array":
        inner = _decoder(schema["items"], drop)
        return None if inner is None else (lambda v: [inner(x) for x in v])
    if schema["type"] != "record":
        return None
    nullable = drop and any(isinstance(f["type"], list) and "null" in f["type"] for f in schema["fields"])
    fields = [(f["name"], dec) for f in schema["fields"] if (dec := _decoder(f["type"], drop))]
    if not fields and not nullable:
        return None

    def record(d):
        if nullable:
            d = {k: v for k, v in d.items() if v is not None}
        for name, dec in fields:
            v = d.get(name)
            if v is not None:
                d[name] = dec(v)
        return d

    return record


def _decimal_codec(scale: int, precision: int, where: str):
    """Avro decimal on `bytes`: the unscaled integer, two's-complement big-endian, fewest bytes."""
    factor, limit, zero = 10 ** scale, 10 ** precision, Decimal(0).scaleb(-scale)

    def enc(value):
        if not isinstance(value, Decimal):
            raise AvroEncodeError(f"{where}: expected a Decimal, got {type(value).__name__} {value!r}")
        if not value:
            return b"\x00"
        try:
            num, den = value.as_integer_ratio()
        except (ValueError, OverflowError):
            raise AvroEncodeError(f"{where}: {value!r} is not a finite number") from None
        shift, rest = divmod(factor, den)
        if rest:
            raise AvroEncodeError(f"{where}: {value} has more than {scale} decimal places")
        n = num * shift
        if not -limit < n < limit:
            raise AvroEncodeError(f"{where}: {value} has more than {precision} digits")
        return n.to_bytes((n.bit_length() + 8) // 8, "big", signed=True)

    def dec(raw):
        if raw == b"\x00":
            return zero
        return Decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-scale)

    return enc, dec


# -- encode_request: a JSON-shaped event checked against settle_request ---------------------------

_PRIMITIVE = {"string": str, "int": int, "long": int, "boolean": bool, "bytes": (bytes, bytearray)}


def _prepare(schema: Any, value: Any, path: str) -> Any:
    """Check a JSON-shaped value against its (parsed) schema and turn numbers into Decimals where the
    schema has decimals; errors name the field as pydantic would (`input.feedetail[0].cnt`)."""
    where = path.lstrip(".") or "the event"
    if isinstance(schema, list):  # a union
        if isinstance(value, tuple):
            name, inner = value
            chosen = next(s for s in schema if isinstance(s, dict) and s.get("name") == name)
            return (name, _prepare(chosen, inner, path))
        if value is None:
            if "null" in schema:
                return None
            raise AvroEncodeError(f"{where}: required, null given")
        (inner,) = [s for s in schema if s != "null"]
        return _prepare(inner, value, path)
    if value is None:
        raise AvroEncodeError(f"{where}: required, null given")
    if isinstance(schema, str):
        return _primitive(schema, value, where)
    kind = schema["type"]
    if kind == "record":
        if not isinstance(value, dict):
            raise AvroEncodeError(f"{where}: expected an object, got {type(value).__name__}")
        fields = schema["fields"]
        known = {f["name"] for f in fields}
        for key in value:
            if key not in known:
                raise AvroEncodeError(f"{path.lstrip('.') + '.' if path else ''}{key}: not a field of "
                                      f"{schema['name'].removeprefix('yibao.')}")
        out = {}
        for f in fields:
            name = f["name"]
            if name in value:
                out[name] = _prepare(f["type"], value[name], f"{path}.{name}")
            elif "default" not in f:
                raise AvroEncodeError(f"{path.lstrip('.') + '.' if path else ''}{name}: required, missing")
        return out
    if kind == "array":
        if not isinstance(value, list):
            raise AvroEncodeError(f"{where}: expected a list, got {type(value).__name__}")
        return [_prepare(schema["items"], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if schema.get("logicalType") == "decimal":
        return _decimal(value, schema["scale"], schema["precision"], where)
    return _primitive(kind, value, where)


def _primitive(kind: str, value: Any, where: str) -> Any:
    expected = _PRIMITIVE.get(kind)
    if expected is not None and (not isinstance(value, expected) or (kind != "boolean" and isinstance(value, bool))):
        raise AvroEncodeError(f"{where}: expected {kind}, got {type(value).__name__} {value!r}")
    return value


def _decimal(value: Any, scale: int, precision: int, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float, str)):
        raise AvroEncodeError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else value)
        exact = number.quantize(Decimal(1).scaleb(-scale)) if number.is_finite() else None
    except (InvalidOperation, ValueError):
        exact = None
    if exact is None or len(exact.as_tuple().digits) > precision:
        raise AvroEncodeError(f"{where}: {value!r} is not a number of at most {precision} digits")
    if exact != number:
        raise AvroEncodeError(f"{where}: {value!r} has more than {scale} decimal places")
    return exact
