"""``POST /api/auth/token/``: DRF's ``obtain_auth_token``, throttled by django-axes.

DRF's view authenticates through ``django.contrib.auth.authenticate``, so
django-axes counts its failures and refuses logins during a lockout, but it
marks DRF's request wrapper, which axes' middleware never sees: without this
view a locked-out client would get the same 400 as a wrong password. Here a
lockout is the API's 429 ``rate_limited`` with ``Retry-After``::

    POST /api/auth/token/  username=alice password=...   ->  200 {"token": "..."}
    (the 11th wrong password in a row)                    ->  429 {"error": {"code": "rate_limited", ...}}
"""

from __future__ import annotations

from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from mcp_tools.security.lockout import locked_out, lockout_json

from .parsers import GuardedJSONParser, LimitedFormParser


class ThrottledObtainAuthToken(ObtainAuthToken):
    # DRF's view names its own parsers; these are the API's (size limit, the JSON check).
    parser_classes = (LimitedFormParser, MultiPartParser, GuardedJSONParser)

    def post(self, request: Request, *args, **kwargs) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            if locked_out(request):
                return lockout_json()
            raise


obtain_auth_token = ThrottledObtainAuthToken.as_view()
