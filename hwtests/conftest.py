"""Fixtures of the cross-backend tests."""
import pytest

from crossbackend import parse_backends


@pytest.fixture(scope="session")
def backends(request) -> list[str]:
    return parse_backends(request.config.getoption("--backends"))
