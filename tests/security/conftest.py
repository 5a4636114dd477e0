"""Fixtures shared with the REST API tests (the ASGI app over httpx)."""
from tests.api.conftest import asgi_http  # noqa: F401  (fixture)
