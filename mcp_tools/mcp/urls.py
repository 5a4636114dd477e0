"""The OAuth authorization server for MCP clients (oauth.py), mounted at the site root.

``/.well-known/oauth-authorization-server`` (RFC 8414) and
``/.well-known/oauth-protected-resource[/mcp]`` (RFC 9728) must sit at the
origin's root; the authorization and token endpoints live under ``/o/``.
"""

from django.urls import include, path
from oauth2_provider.urls import base_urlpatterns, metadata_urlpatterns

app_name = "oauth2_provider"

urlpatterns = [*metadata_urlpatterns, path("o/", include(base_urlpatterns))]
