import pytest

from processors.ledger import Ledger
from tests.support import BOOK


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(BOOK)
