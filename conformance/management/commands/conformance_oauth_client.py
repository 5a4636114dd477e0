"""``manage.py conformance_oauth_client --redirect-uri URI``: a user and a public OAuth client for the suite.

The suite's ``authorization`` scenarios drive our authorization server
(django-oauth-toolkit) with a client they are given: a public client (PKCE,
no secret) whose redirect URI is the suite's callback server. Prints JSON:
``{"client_id", "username", "password"}`` (a fresh password every run).
"""

import json
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from oauth2_provider.models import Application

CLIENT_ID = "conformance-suite"
USERNAME = "conformance-owner"


class Command(BaseCommand):
    help = "Create (or reset) the OAuth client and user the conformance suite's authorization scenarios use."

    def add_arguments(self, parser):
        parser.add_argument("--redirect-uri", required=True)

    def handle(self, *args, **options):
        password = secrets.token_urlsafe(16)
        user, _ = get_user_model().objects.get_or_create(username=USERNAME)
        user.set_password(password)
        user.save()
        Application.objects.update_or_create(
            client_id=CLIENT_ID,
            defaults={
                "name": "MCP conformance suite",
                "client_type": Application.CLIENT_PUBLIC,
                "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
                "redirect_uris": options["redirect_uri"],
                "client_secret": "",
                "user": None,
            },
        )
        self.stdout.write(json.dumps({"client_id": CLIENT_ID, "username": USERNAME, "password": password}))
