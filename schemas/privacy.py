"""Masking of personal data for logs and screens: never print a full ID number."""
from __future__ import annotations


def mask_id(value: str | None) -> str:
    """'530102195001011234' -> '5301************34'; short ids keep only their last character."""
    if not value:
        return ""
    if len(value) <= 6:
        return "*" * (len(value) - 1) + value[-1:]
    return value[:4] + "*" * (len(value) - 6) + value[-2:]

