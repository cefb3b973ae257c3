import pytest

from tests.protocol.proto import Proto


@pytest.fixture
def proto(runner):
    return Proto(runner)
