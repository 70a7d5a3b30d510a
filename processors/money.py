"""Money helpers: Decimal yuan, ROUND_HALF_UP to the fen, and the text forms used in derivations."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

ZERO = Decimal("0.00")
FEN = Decimal("0.01")


def fen(amount: Decimal) -> Decimal:
    """Round half-up to the fen: the rounding every rule step of the policy ends with."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def num(amount: Decimal) -> str:
    """A money or count figure as a person writes it in a derivation: 332.50 -> '332.5', 500.00 -> '500'."""
    text = str(amount)
    if "E" in text:  # str() switches to scientific notation for some exponents; format() never does
        text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def pct(ratio: Decimal) -> str:
    """A ratio as a percentage: 0.70 -> '70%', 0.055 -> '5.5%'."""
    return num(ratio * 100) + "%"
