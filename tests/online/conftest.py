import pytest

from convsim.trace import Conversation

from ._make import mixed_window


@pytest.fixture(scope="session")
def window() -> list[Conversation]:
    """12,000 conversations that every rule of the example policy takes a share of."""
    return mixed_window(12_000)
