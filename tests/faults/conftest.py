from tests.integration.conftest import broker, spawn, worker  # noqa: F401
