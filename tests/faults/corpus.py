"""Hostile input for the fault suite, and the contract a rejected message is held to.

Three generators of messages (a message is value bytes, key and headers, as they arrive on
`settle.requests` / `insured.commands`, or one line of a `yibao settle` file):

- `categories(tag)`: named hand-written categories, each item saying what must happen to it
  (`expect`: the router rejects it / routes it / either; when routed, whether the ledger refuses it
  and with which code). Categories: random bytes; truncated JSON; wrong types for each envelope
  field; hostile amounts (huge, negative, NaN, Infinity, 1e400, 4,400 digits); amounts a float would round
  into validity (1e-400, 100.00000000000000000001); deep nesting (500
  and 5,000 levels); unicode oddities (lone surrogates JSON-escaped, raw CESU-8 surrogates, overlong
  and invalid UTF-8, NUL, RTL marks, non-BMP, BOM, zero-width) in msgid, infno, fixmedins_code and
  psn_no; missing envelope fields; Avro garbage under `avro/binary`; unsupported content types;
  empty and whitespace messages; oversized messages; impossible dates.
  `in_context(tag, valid, psn_no)` adds the ones that need earlier events: a reused msgid, cancels of
  unknown settlements, settlement year 0001, a person born 9999-12-31 then settling.
- hypothesis strategies: `messages()` (any bytes, mutated events, truncations, hostile JSON values,
  mutated Avro, empties; random headers, keys) and `offline_lines()` (the same, as file lines).
- `mutants(rng, n, tag)`: a seeded hand-rolled mutator for the broker tests, where hypothesis'
  shrinking would cost a broker round trip per step.

Every hostile event names an unknown person (`NOBODY`) unless it needs a known one, so that one
that happens to be valid is still refused (UNKNOWN_PERSON) and changes no state.

The contract of a rejection (`check_dead_letter`, `expected_answer`): the dead letter is the
`rejected` Avro record with the original bytes (cut at REJECTED_MAX_BYTES), the source topic,
partition and offset, a non-empty human reason (at most REASON_MAX characters). The sender is
answered (`settle.results`, BAD_EVENT, in JSON unless the request was `avro/binary`) exactly when
the message *shows* a non-empty string `msgid` and `fixmedins_code` at top level (`shown`): when the
router reads it (non-blank, within the size limit, a supported content type) and Python's `json`
(integers of any length, NaN/Infinity accepted) or the request's Avro schema can decode it. Text
that cannot be encoded as UTF-8 (a lone surrogate) is answered backslash-escaped (`escape`) and the
reason says "escaped". Oversized, empty and unsupported-content-type messages are dead-lettered
unread: never answered.
"""
from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from decimal import Decimal
from itertools import count

from hypothesis import strategies as st

from schemas import avro
from schemas.serde import encode
from streams import topics
from streams.codec import content_type
from tests.support import HOSPITAL, accumulators, cancel, filing, line, person, settlement

JSON = "application/json"
AVRO = "avro/binary"
JSON_H = (("content-type", b"application/json"),)
AVRO_H = (("content-type", b"avro/binary"),)
HOSP = HOSPITAL[1]
NOBODY = "FZNOBODY00000001"  # nobody's psn_no: a valid-looking hostile event is refused UNKNOWN_PERSON
MAX_BYTES = 1_000_000  # the service's default YIBAO_MAX_MESSAGE_BYTES
REASON_MAX = 2000  # a human reason, not an echo of the input
SEED = 20261203
DLQ_CODES = ("UNKNOWN_PERSON", "UNKNOWN_INSTITUTION")  # ledger refusals that are dead-lettered too


# -- writing hostile JSON -----------------------------------------------------------------------


class Raw(str):
    """A JSON number literal written as is: 4,400 digits, NaN, 1e400 (json.dumps cannot write these)."""


def dumps(doc, ascii: bool = True) -> bytes:
    """JSON bytes of `doc`. ascii=True writes non-ASCII as \\u escapes (so a lone surrogate becomes a
    JSON-escaped lone surrogate); ascii=False writes raw UTF-8 (a lone surrogate as CESU-8 bytes)."""
    return _dump(doc, ascii).encode("utf-8", "surrogatepass")


def _dump(v, ascii: bool) -> str:
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=ascii)}:{_dump(x, ascii)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_dump(x, ascii) for x in v) + "]"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=ascii)
    return json.dumps(v)  # int, float (NaN, Infinity)


def nested(depth: int, kind: str = "list") -> Raw:
    """A JSON value nested `depth` levels: [[[...]]] or {"a":{"a":...}}."""
    if kind == "list":
        return Raw("[" * depth + "]" * depth)
    return Raw('{"a":' * depth + "1" + "}" * depth)


def escape(text: str) -> str:
    """What the service answers for text that cannot be encoded as UTF-8: lone surrogates as \\udXXX."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


# -- what a message shows, and what its rejection must look like --------------------------------


@dataclass(frozen=True)
class Shown:
    """The envelope a rejected message still shows to the router (raw text, not escaped)."""

    readable: bool
    infno: str | None = None
    msgid: str | None = None
    code: str | None = None

    @property
    def answered(self) -> bool:
        return self.readable and self.msgid is not None and self.code is not None


def shown(value: bytes | None, headers, max_bytes: int | None = MAX_BYTES) -> Shown:
    ctype = content_type(dict(headers))
    if value is None or not value.strip() or (max_bytes is not None and len(value) > max_bytes) \
            or ctype not in (JSON, AVRO):
        return Shown(False)
    try:
        doc = json.loads(value, parse_int=Decimal) if ctype == JSON else avro.decode_request(value)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, AvroDecodeError
        return Shown(False)
    if not isinstance(doc, dict):
        return Shown(True)
    text = {k: v if isinstance(v, str) and v else None for k in ("infno", "msgid", "fixmedins_code")
            for v in [doc.get(k)]}
    return Shown(True, text["infno"], text["msgid"], text["fixmedins_code"])


def _esc(text: str | None) -> str | None:
    return None if text is None else escape(text)


def check_dead_letter(rec: dict, value: bytes | None, headers, topic: str, partition: int, offset: int,
                      max_bytes: int = MAX_BYTES) -> Shown:
    """Assert a `rejected` record (decoded) keeps the contract for this message; return what it shows."""
    original = value or b""
    assert rec["original"] == original[:topics.REJECTED_MAX_BYTES]
    assert rec["original_size"] == len(original)
    assert (rec["source_topic"], rec["partition"], rec["offset"]) == (topic, partition, offset)
    reason = rec["reason"]
    assert isinstance(reason, str) and reason.strip(), rec
    assert len(reason) <= REASON_MAX, f"reason of {len(reason)} characters: {reason[:200]}..."
    seen = shown(value, headers, max_bytes)
    assert rec["msgid"] == _esc(seen.msgid), (rec["msgid"], seen)
    assert rec["infno"] == _esc(seen.infno), (rec["infno"], seen)
    if any(t is not None and not encodable(t) for t in (seen.infno, seen.msgid, seen.code)):
        assert "escaped" in reason.lower(), reason
    return seen


def expected_answer(seen: Shown, reason: str) -> dict | None:
    """The error result the sender of a rejected message gets, decoded (None: no answer)."""
    if not seen.answered:
        return None
    return {"infno": _esc(seen.infno), "inf_refmsgid": escape(seen.msgid), "infcode": -1,
            "err_msg": f"BAD_EVENT: {reason}", "warn_msg": None, "output": None}


def answer_key(seen: Shown) -> bytes:
    return escape(seen.code).encode("utf-8")


# -- the hand-written categories ----------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    category: str
    name: str
    value: bytes | None
    headers: tuple = JSON_H
    key: bytes | None = b"FZKEY"  # FZKEY: any key will do (the broker tests put it beside valid traffic)
    expect: str = "reject"  # "reject": the router dead-letters it; "route": valid, the ledger answers; "either"
    refused: bool = True  # when routed: the ledger answers infcode -1 (it changes no state)
    code: str | None = None  # when routed and refused: the err_msg code (None: any)
    reason: str | None = None  # a fragment the rejection reason (or the ledger's err_msg) contains
    offline: bool = True  # meaningful as a line of a `yibao settle` file (JSON, no size limit offline)
    broker: bool = True  # sent on the broker (a 17 MiB message is only given to the pure router)

    @property
    def ctype(self) -> str:
        return content_type(dict(self.headers))

    @property
    def as_line(self) -> bytes | None:
        if not self.offline or self.value is None or self.ctype != JSON or b"\n" in self.value:
            return None
        return self.value


class _Ids:
    def __init__(self, tag: str) -> None:
        self.tag, self.n = tag, count(1)

    def __call__(self) -> str:
        return f"FZ{self.tag}-{next(self.n):04d}"


def bill(msgid: str, psn_no: str = NOBODY, amount: str = "100", **kw) -> dict:
    return settlement([line(amount), line("20", "02")], psn_no=psn_no, msgid=msgid, fixmedins_code=HOSP, **kw)


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def _set(doc, path, value):
    _get(doc, path[:-1])[path[-1]] = value
    return doc


def _del(doc, path):
    del _get(doc, path[:-1])[path[-1]]
    return doc


def _random_bytes(ids) -> list[Hostile]:
    rng = random.Random(SEED)
    fixed = [b"\x00\x01not json at all\xff", b"\xff\xfe\xfd\xfc", b"}{", b"nul\x00l", b"\x00", "\u3000".encode(),
             b'"just a string"', b"12345", b"null", b"[]", b'{"infno"', b"\xef\xbb\xbf{}"]
    values = fixed + [rng.randbytes(rng.randint(1, 400)) for _ in range(12)]
    return [Hostile("random bytes", f"bytes {v[:12]!r}", v) for v in values]


def _truncated(ids) -> list[Hostile]:
    raw = dumps(bill(ids()))
    cuts = [1, 2, 10, 30, len(raw) // 4, len(raw) // 2, 3 * len(raw) // 4, len(raw) - 2, len(raw) - 1]
    return [Hostile("truncated JSON", f"cut at {c} of {len(raw)}", raw[:c]) for c in cuts]


_WRONG = [Raw("1"), Raw("-1.5"), True, None, [], {}, "", ["x"], {"a": 1}]
_REQUIRED = [("infno",), ("msgid",), ("fixmedins_code",), ("input",), ("input", "data"), ("input", "feedetail"),
             ("input", "data", "psn_no"), ("input", "data", "mdtrt_id"), ("input", "data", "med_type"),
             ("input", "feedetail", 0), ("input", "feedetail", 0, "chrgitm_lv")]


def _wrong_types(ids) -> list[Hostile]:
    out = []
    for path in _REQUIRED:
        for v in _WRONG:
            out.append(Hostile("wrong types", f"{'.'.join(map(str, path))} = {_dump(v, True)}",
                               dumps(_set(bill(ids()), path, v)), reason=[p for p in path if isinstance(p, str)][-1]))
    for path in [("input", "data", "setl_time"), ("input", "feedetail", 0, "det_item_fee_sumamt"),
                 ("mdtrtarea_admvs",), ("insuplc_admdvs",), ("input", "data", "acct_used_flag")]:
        for v in [True, [], {}, "", ["x"], {"a": 1}, "abc"]:
            out.append(Hostile("wrong types", f"{'.'.join(map(str, path))} = {_dump(v, True)}",
                               dumps(_set(bill(ids()), path, v)), reason=path[-1]))
    return out


_AMOUNTS = ["-1", "-0.01", "1e20", "99999999999999999999", "10000000000.00", "NaN", "Infinity", "-Infinity",
            "1e400", "-1e400", "0.001"]


def _amounts(ids) -> list[Hostile]:
    path = ("input", "feedetail", 0, "det_item_fee_sumamt")
    out = [Hostile("amounts", f"det_item_fee_sumamt = {a}", dumps(_set(bill(ids()), path, Raw(a))), reason="det_item_fee_sumamt")
           for a in _AMOUNTS]
    for digits in ("9" * 4400, "-" + "9" * 4400, "1" + "0" * 4399 + ".50"):
        out.append(Hostile("amounts", f"det_item_fee_sumamt of {len(digits)} characters",
                           dumps(_set(bill(ids()), path, Raw(digits)))))
    for field, value in [("cnt", "0"), ("cnt", "-1"), ("cnt", "NaN"), ("cnt", "1e400"), ("pric_uplmt_amt", "-5"),
                         ("pric_uplmt_amt", "Infinity")]:
        out.append(Hostile("amounts", f"{field} = {value}",
                           dumps(_set(bill(ids()), ("input", "feedetail", 0, field), Raw(value))), reason=field))
    wrong_sum = bill(ids())
    wrong_sum["input"]["data"]["medfee_sumamt"] = Decimal("1.00")
    out.append(Hostile("amounts", "medfee_sumamt differs from the lines", dumps(wrong_sum), reason="medfee_sumamt"))
    return out


def _inexact(ids) -> list[Hostile]:
    """Amounts with more than 2 decimals that a float would round to a valid one: money must be read
    exactly (never through a float), so each is refused, not settled as the rounded amount."""
    path = ("input", "feedetail", 0, "det_item_fee_sumamt")
    return [Hostile("inexact amounts", f"det_item_fee_sumamt = {a if len(a) < 40 else a[:20] + '...'}",
                    dumps(_set(bill(ids()), path, Raw(a))), reason="det_item_fee_sumamt")
            for a in ("1e-400", "100.00000000000000000001", "0.1000000000000000000001", "9999999999.989999999999",
                      "0." + "0" * 4399 + "1")]


def _deep(ids) -> list[Hostile]:
    out = [Hostile("deep nesting", "[[[...]]] 5,000 levels", dumps(nested(5000))),
           Hostile("deep nesting", '{"a":{"a":...}} 5,000 levels', dumps(nested(5000, "object"))),
           Hostile("deep nesting", "[[[...]]] 100,000 levels", dumps(nested(100_000)))]
    for depth in (500, 5000):
        for kind in ("list", "object"):
            out.append(Hostile("deep nesting", f"input nested {depth} levels ({kind}), msgid and fixmedins_code shown",
                               dumps(_set(bill(ids()), ("input",), nested(depth, kind)))))
            out.append(Hostile("deep nesting", f"feedetail[0] nested {depth} levels ({kind})",
                               dumps(_set(bill(ids()), ("input", "feedetail", 0), nested(depth, kind)))))
    return out


# (name, text put in the field, how it is written, expect when it is a string field other than infno)
_ODD_TEXT = [
    ("lone high surrogate, JSON-escaped", "\ud800", "escaped", "reject"),
    ("lone low surrogate, JSON-escaped", "\udfff", "escaped", "reject"),
    ("reversed surrogate pair, JSON-escaped", "\udc00\ud800", "escaped", "reject"),
    ("high surrogate at the end, JSON-escaped", "X\ud83d", "escaped", "reject"),
    ("valid surrogate pair, JSON-escaped", "\U0001d11e", "escaped", "either"),
    ("lone surrogate as raw CESU-8 bytes", "\ud800", "raw", "reject"),
    ("NUL", "X\x00Y", "raw", "either"),
    ("right-to-left override", "X\u202eY", "raw", "either"),
    ("right-to-left mark", "\u200fX", "raw", "either"),
    ("non-BMP character", "X\U0001d11e", "raw", "either"),
    ("BOM inside", "X\ufeffY", "raw", "either"),
    ("zero-width space", "X\u200bY", "raw", "either"),
    ("line separator", "X\u2028Y", "raw", "either"),
]
_ODD_BYTES = [("overlong UTF-8 '/'", b"\xc0\xaf"), ("invalid UTF-8 byte 0xff", b"\xff"),
              ("truncated UTF-8 sequence", b"\xe4\xb8"), ("UTF-8 encoded surrogate", b"\xed\xbf\xbf")]
_ODD_FIELDS = {"msgid": ("msgid",), "infno": ("infno",), "fixmedins_code": ("fixmedins_code",),
               "psn_no": ("input", "data", "psn_no")}


def _unicode(ids) -> list[Hostile]:
    out = []
    for field, path in _ODD_FIELDS.items():
        for name, text, how, expect in _ODD_TEXT:
            msgid = ids()
            doc = bill(msgid)
            current = _get(doc, path)
            value = text if field == "infno" else current + text  # keep msgids unique
            _set(doc, path, value)
            out.append(Hostile("unicode", f"{field}: {name}", dumps(doc, ascii=how == "escaped"),
                               expect="reject" if field == "infno" else expect))
        for name, raw in _ODD_BYTES:
            doc = _set(bill(ids()), path, "@@ODD@@")
            out.append(Hostile("unicode", f"{field}: {name}", dumps(doc).replace(b"@@ODD@@", raw)))
    return out


def _missing(ids) -> list[Hostile]:
    paths = [("infno",), ("msgid",), ("fixmedins_code",), ("input",), ("input", "data"), ("input", "feedetail"),
             ("input", "data", "psn_no"), ("input", "data", "setl_time"), ("input", "data", "med_type"),
             ("input", "data", "mdtrt_id"), ("input", "feedetail", 0, "det_item_fee_sumamt"),
             ("input", "feedetail", 0, "chrgitm_lv")]
    out = [Hostile("missing fields", f"no {'.'.join(map(str, p))}", dumps(_del(bill(ids()), p)), reason=str(p[-1]))
           for p in paths]
    out.append(Hostile("missing fields", "empty object", b"{}"))
    out.append(Hostile("missing fields", "empty feedetail", dumps(_set(bill(ids()), ("input", "feedetail"), [])),
                       reason="feedetail"))
    return out


def _avro(ids) -> list[Hostile]:
    rng = random.Random(SEED + 1)
    good = avro.encode_request(bill(ids()))
    out = [Hostile("avro garbage", f"random bytes ({n})", rng.randbytes(n), AVRO_H, offline=False)
           for n in (1, 3, 17, 64, 200, 1000)]
    for cut in (1, 5, len(good) // 2, len(good) - 1):
        out.append(Hostile("avro garbage", f"valid datum cut at {cut} of {len(good)}", good[:cut], AVRO_H, offline=False))
    out += [Hostile("avro garbage", "valid datum + 1 byte", good + b"\x00", AVRO_H, offline=False),
            Hostile("avro garbage", "valid datum + 2 bytes", good + b"\xff\xff", AVRO_H, offline=False),
            Hostile("avro garbage", "JSON under avro/binary", dumps(bill(ids())), AVRO_H, offline=False),
            Hostile("avro garbage", "string length 2^62", b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f", AVRO_H,
                    offline=False),
            Hostile("avro garbage", "negative string length", b"\x01abc", AVRO_H, offline=False)]
    msgid = ids()
    marked = avro.encode_request(bill(msgid))
    assert marked.count(msgid.encode()) == 1
    out.append(Hostile("avro garbage", "msgid bytes not UTF-8",
                       marked.replace(msgid.encode(), b"\xff" * len(msgid)), AVRO_H, offline=False))
    negative = bill(ids())
    negative["input"]["feedetail"][0]["det_item_fee_sumamt"] = Decimal("-1.00")
    out.append(Hostile("avro garbage", "well-formed datum, negative amount", avro.encode_request(negative), AVRO_H,
                       reason="det_item_fee_sumamt", offline=False))
    no_code = bill(ids())
    no_code["fixmedins_code"] = None
    out.append(Hostile("avro garbage", "well-formed datum, no fixmedins_code", avro.encode_request(no_code), AVRO_H,
                       reason="fixmedins_code", offline=False))
    return out


def _content_types(ids) -> list[Hostile]:
    out = []
    for ctype in (b"text/csv", b"application/xml", b"application/avro", b"avro/json", b"application/x-protobuf",
                  b"\xff\xfe", b"application/json5", b"json"):
        out.append(Hostile("content types", f"content-type {ctype!r}", dumps(bill(ids())), (("content-type", ctype),),
                           reason="content-type", offline=False))
    for headers in ((("content-type", b"APPLICATION/JSON; charset=utf-8"),), (("content-type", b" application/json "),),
                    (), (("content-type", b""),), (("x-other", b"\xff"),)):
        out.append(Hostile("content types", f"JSON with headers {headers!r}", dumps(bill(ids())), headers,
                           expect="route", code="UNKNOWN_PERSON", offline=False))
    out.append(Hostile("content types", "Avro as AVRO/BINARY", avro.encode_request(bill(ids())),
                       (("content-type", b"AVRO/BINARY"),), expect="route", code="UNKNOWN_PERSON", offline=False))
    return out


def _empty(ids) -> list[Hostile]:
    out = []
    for headers in (JSON_H, AVRO_H):
        for value in (b"", None, b" ", b"\t\r\n  ", b"\x0b\x0c"):
            out.append(Hostile("empty", f"{value!r} as {headers[0][1].decode()}", value, headers, reason="empty",
                               offline=headers == JSON_H))
    return out


def _oversized(ids) -> list[Hostile]:
    padded = dumps(bill(ids()))
    exact = dumps(bill(ids()))
    return [
        Hostile("oversized", "one byte over the limit, no envelope",
                b'{"pad":"' + b"x" * (MAX_BYTES - 9) + b'"}', reason=str(MAX_BYTES), offline=False),
        Hostile("oversized", "a valid event padded one byte over the limit (dead-lettered unread)",
                padded[:-1] + b" " * (MAX_BYTES + 1 - len(padded)) + b"}", reason=str(MAX_BYTES), offline=False),
        Hostile("oversized", "a valid event of exactly the limit (read)",
                exact[:-1] + b" " * (MAX_BYTES - len(exact)) + b"}", expect="route", code="UNKNOWN_PERSON",
                offline=False),
        Hostile("oversized", "17 MiB: cut in the dead letter", b"[" + b" " * (17 * 1024 * 1024) + b"]",
                reason=str(MAX_BYTES), offline=False, broker=False),
    ]


def _dates(ids) -> list[Hostile]:
    out = []
    for when in ("2024-02-30 10:00:00", "2023-02-29 10:00:00", "2024-13-01 10:00:00", "2024-11-05 25:00:00",
                 "2024-11-05 10:61:00", "0000-01-01 10:00:00", "10000-01-01 10:00:00", "2024-11-05T10:00:00+99:00",
                 "yesterday"):
        out.append(Hostile("impossible dates", f"setl_time {when}",
                           dumps(_set(bill(ids()), ("input", "data", "setl_time"), when)), reason="setl_time"))
    for when in ("0001-01-01 00:00:00", "9999-12-31 23:59:59"):
        out.append(Hostile("impossible dates", f"setl_time {when} (unknown person)",
                           dumps(_set(bill(ids()), ("input", "data", "setl_time"), when)), expect="either"))
    for brdy in ("2024-02-30", "1960-00-10", "not a date"):
        p = person(NOBODY, brdy="1960-01-01")
        p["input"]["brdy"] = brdy
        out.append(Hostile("impossible dates", f"person brdy {brdy}", dumps(p), reason="brdy"))
    return out


CATEGORIES = {
    "random bytes": _random_bytes, "truncated JSON": _truncated, "wrong types": _wrong_types,
    "amounts": _amounts, "inexact amounts": _inexact, "deep nesting": _deep, "unicode": _unicode, "missing fields": _missing,
    "avro garbage": _avro, "content types": _content_types, "empty": _empty, "oversized": _oversized,
    "impossible dates": _dates,
}


def categories(tag: str = "C", only: str | None = None) -> dict[str, list[Hostile]]:
    """The hand-written categories by name; msgids are unique per tag."""
    ids = _Ids(tag)
    return {name: make(ids) for name, make in CATEGORIES.items() if only in (None, name)}


def every(tag: str = "C") -> list[Hostile]:
    return [h for items in categories(tag).values() for h in items]


def in_context(tag: str, valid: list[dict], psn_no: str, future_psn_no: str) -> tuple[list[dict], list[Hostile]]:
    """Hostile events that need earlier ones: returns (setup events, hostile events to send after `valid`).

    `valid` are settlements already sent (their msgids are reused); `psn_no` a known person;
    `future_psn_no` a person the setup creates with birth date 9999-12-31."""
    ids = _Ids(tag)
    setup = [person(future_psn_no, brdy="9999-12-31")]
    out = []
    for original in valid[:3]:
        again = copy.deepcopy(original)
        again["input"]["feedetail"][0]["det_item_fee_sumamt"] += Decimal("1.11")
        out.append(Hostile("reused msgids", f"{original['msgid']} reused with another amount", encode(again),
                           key=original["input"]["data"]["psn_no"].encode(), expect="route", code="MSGID_REUSED"))
    gone = cancel(bill(ids(), psn_no=psn_no))
    out.append(Hostile("unknown cancels", "cancel of a msgid never settled", encode(gone), key=psn_no.encode(),
                       expect="route", code="UNKNOWN_SETTLEMENT"))
    by_id = cancel(bill(ids(), psn_no=psn_no), msgid=ids())
    by_id["input"]["data"] = {"psn_no": psn_no, "setl_id": "SFZ-NO-SUCH-SETTLEMENT"}
    out.append(Hostile("unknown cancels", "cancel of an unknown setl_id", encode(by_id), key=psn_no.encode(),
                       expect="route", code="UNKNOWN_SETTLEMENT"))
    other = cancel(valid[0], msgid=ids())
    other["input"]["data"]["psn_no"] = NOBODY
    out.append(Hostile("unknown cancels", "cancel of another person's settlement", encode(other),
                       key=NOBODY.encode(), expect="route", code="UNKNOWN_SETTLEMENT"))
    out.append(Hostile("impossible dates", "settlement in year 0001 by a known person",
                       encode(bill(ids(), psn_no=psn_no, day="0001-01-01")), key=psn_no.encode(), expect="either"))
    out.append(Hostile("impossible dates", "settlement by a person born 9999-12-31",
                       encode(bill(ids(), psn_no=future_psn_no)), key=future_psn_no.encode(), expect="route",
                       reason="9999-12-31"))
    return setup, out


# -- hypothesis strategies ----------------------------------------------------------------------

SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]
ODD = ["\x00", "\u202e", "\u200f", "\ufeff", "\U0001d11e", "\u3000", "\x7f", "\u2028", "\u0085", "é", "\\", '"']
LITERALS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 4400, "1" + "0" * 4400 + ".5", "-0", "0.001",
            "1e-400", "99999999999.99", "1E+2", "-1", "0.10", "1e308", "-0.0"]

texts = st.text(st.one_of(st.characters(), st.sampled_from(SURROGATES + ODD)), max_size=24)
numbers = st.one_of(st.integers(-(10**30), 10**30), st.floats(), st.sampled_from(LITERALS).map(Raw),
                    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: Raw(str(d))))
values = st.recursive(st.none() | st.booleans() | numbers | texts,
                      lambda kids: st.lists(kids, max_size=3) | st.dictionaries(texts, kids, max_size=3),
                      max_leaves=8)

# Bases for mutation: every kind of event, for unknown people (a mutant that stays valid is refused).
OFFLINE_BASES = (
    bill("FZH-BASE-1"),
    bill("FZH-BASE-2", med_type="21", infno="2304"),
    cancel(bill("FZH-BASE-3"), msgid="FZH-BASE-4"),
    accumulators(2024, psn_no=NOBODY, op_pool_paid=Decimal("10.00")),
    filing("MXB01", psn_no=NOBODY),
)
ROUTER_BASES = OFFLINE_BASES + (person(NOBODY, balc="10"), {"infno": "institution", "msgid": "FZH-BASE-5", "input": {
    "fixmedins_code": "FZHOSPITAL", "fixmedins_type": "1", "hosp_lv": 2, "admdvs": "530102"}})


def _paths(doc, prefix=()):
    if isinstance(doc, dict):
        items = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    else:
        return []
    out = []
    for k, v in items:
        out.append(prefix + (k,))
        out += _paths(v, prefix + (k,))
    return out


@st.composite
def mutated(draw, bases=ROUTER_BASES) -> bytes:
    doc = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "replace", "delete", "add", "wrap", "deep", "text"]))
        if op == "replace":
            _set(doc, path, draw(values))
        elif op == "delete":
            _del(doc, path)
        elif op == "add":
            target = _get(doc, path[:-1])
            if isinstance(target, dict):
                target[draw(texts)] = draw(values)
        elif op == "wrap":
            _set(doc, path, [_get(doc, path)])
        elif op == "deep":
            _set(doc, path, nested(draw(st.sampled_from([50, 300, 1100, 5000])), draw(st.sampled_from(["list", "object"]))))
        else:
            _set(doc, path, draw(texts))
        if not _paths(doc):
            break
    return dumps(doc, ascii=draw(st.booleans()))


@st.composite
def truncated(draw, bases=ROUTER_BASES) -> bytes:
    raw = dumps(draw(st.sampled_from(bases)))
    return raw[:draw(st.integers(0, len(raw) - 1))]


@st.composite
def avro_mutant(draw) -> bytes:
    raw = avro.encode_request(draw(st.sampled_from(ROUTER_BASES)))
    op = draw(st.sampled_from(["cut", "flip", "insert", "append", "as is"]))
    i = draw(st.integers(0, len(raw) - 1))
    if op == "cut":
        return raw[:i]
    if op == "flip":
        return raw[:i] + bytes([raw[i] ^ draw(st.integers(1, 255))]) + raw[i + 1:]
    if op == "insert":
        return raw[:i] + draw(st.binary(min_size=1, max_size=8)) + raw[i:]
    if op == "append":
        return raw + draw(st.binary(min_size=1, max_size=8))
    return raw


CTYPES = [b"application/json", b"avro/binary", b"text/csv", b"", b"\xff", b"Application/JSON;charset=latin-1",
          b"avro/binary; v=2", b"application/octet-stream"]
headers_any = st.one_of(st.just(()), st.tuples(st.tuples(st.just("content-type"), st.sampled_from(CTYPES) | st.binary(max_size=20))),
                        st.tuples(st.tuples(st.just("content-type"), st.sampled_from(CTYPES)),
                                  st.tuples(texts.filter(encodable), st.binary(max_size=20))))


@st.composite
def messages(draw) -> tuple[bytes | None, bytes | None, tuple]:
    """(value, key, headers) of any message the router may be handed."""
    kind = draw(st.sampled_from(["mutated", "bytes", "mutated", "truncated", "mutated", "value", "avro", "mutated",
                                 "empty", "valid", "valid avro"]))
    ctype = JSON_H
    if kind == "bytes":
        value = draw(st.binary(max_size=300))
    elif kind == "mutated":
        value = draw(mutated())
    elif kind == "truncated":
        value = draw(truncated())
    elif kind == "value":
        value = dumps(draw(values), ascii=draw(st.booleans()))
    elif kind == "avro":
        value, ctype = draw(avro_mutant()), AVRO_H
    elif kind == "empty":
        value = draw(st.sampled_from([None, b"", b" ", b"\n\t\r\x0b\x0c"]))
    elif kind == "valid":
        value = dumps(draw(st.sampled_from(ROUTER_BASES)))
    else:
        value, ctype = avro.encode_request(draw(st.sampled_from(ROUTER_BASES))), AVRO_H
    headers = draw(st.sampled_from([ctype, ctype, ()])) if draw(st.integers(0, 3)) else draw(headers_any)
    key = draw(st.one_of(st.none(), st.binary(max_size=40)))
    return value, key, headers


@st.composite
def offline_lines(draw) -> bytes:
    """One line of a `yibao settle` file that must get infcode -1 (or nothing, when blank)."""
    kind = draw(st.sampled_from(["bytes", "mutated", "mutated", "mutated", "truncated", "value", "blank"]))
    if kind == "bytes":
        value = draw(st.binary(max_size=200))
    elif kind == "mutated":
        value = draw(mutated(OFFLINE_BASES))
    elif kind == "truncated":
        value = draw(truncated(OFFLINE_BASES))
    elif kind == "value":
        value = dumps(draw(values), ascii=draw(st.booleans()))
    else:
        value = draw(st.sampled_from([b"", b"   ", b"\t", b"\r", b"\x0b\x0c "]))
    return value.replace(b"\n", b" ")


# -- a seeded mutator for the broker -------------------------------------------------------------

_POOL = [None, True, 0, -1, "", "\ud800", "X\x00", "\u202e", [], {}, Raw("NaN"), Raw("1e400"), Raw("9" * 4400),
         nested(5000), nested(300, "object"), "9999-12-31", "2024-02-30 10:00:00", Raw("-0.01"), ["\udfff"]]


def mutants(rng: random.Random, n: int, tag: str) -> list[Hostile]:
    """n hostile messages from the OFFLINE_BASES (unknown people), mutated with `rng`."""
    out = []
    ids = _Ids(tag)
    for i in range(n):
        base = copy.deepcopy(rng.choice(OFFLINE_BASES))
        base["msgid"] = ids()
        kind = rng.choice(["field", "field", "field", "delete", "bytes", "cut", "avro", "ctype"])
        headers, value = JSON_H, None
        if kind in ("field", "delete"):
            for _ in range(rng.randint(1, 2)):
                paths = _paths(base)
                if not paths:
                    break
                path = rng.choice(paths)
                if kind == "delete":
                    _del(base, path)
                else:
                    _set(base, path, copy.deepcopy(rng.choice(_POOL)))
            value = dumps(base, ascii=rng.random() < 0.7)
        elif kind == "bytes":
            raw = bytearray(dumps(base))
            for _ in range(rng.randint(1, 4)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            value = bytes(raw)
        elif kind == "cut":
            raw = dumps(base)
            value = raw[:rng.randrange(len(raw))]
        elif kind == "avro":
            raw = avro.encode_request(base)
            j = rng.randrange(len(raw))
            value, headers = raw[:j] + bytes([raw[j] ^ rng.randrange(1, 256)]) + raw[j + 1:], AVRO_H
        else:
            value, headers = dumps(base), (("content-type", rng.choice([b"text/plain", b"avro/binary", b"\x00"])),)
        out.append(Hostile("seeded mutants", f"mutant {i} ({kind})", value, headers, expect="either"))
    return out
