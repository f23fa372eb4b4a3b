"""The API tests' factories as fixtures."""

from __future__ import annotations

import pytest

from tests.factories import Chain, Market


@pytest.fixture
def chain(client, operator) -> Chain:
    return Chain(client, operator)


@pytest.fixture
def market(client, chain: Chain, db, clock) -> Market:
    return Market(client, chain, db, clock)
