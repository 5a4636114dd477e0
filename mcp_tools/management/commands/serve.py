"""``python manage.py serve``: the whole service in one process.

Migrates the database, loads gantz.yaml, makes sure a demo user with an API
token exists, prints where to connect, and runs daphne. With no settings this
is the embedded default (SQLite, in-memory channel layer and broker, a Celery
worker thread inside this process).
"""
from __future__ import annotations

import os
import secrets
import shlex
import sys
from pathlib import Path

from daphne.cli import CommandLineInterface
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Set up (migrate, sync_tools, demo user) and run the service with daphne."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo-user", action="store_true", help="Do not create the demo user.")

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("sync_tools", verbosity=0)
        host, port = options["host"], options["port"]
        base = f"{host}:{port}"
        # Where this process's tools reach the service itself (gantz.yaml's service_health: ${SERVICE_URL}).
        os.environ.setdefault("SERVICE_URL", f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}")
        self.stdout.write(f"Mode: {'production (Redis)' if settings.PRODUCTION else 'embedded default'}")
        self.stdout.write(f"Web page:   http://{base}/")
        self.stdout.write(f"Admin:      http://{base}/admin/   (monitor: http://{base}/admin/monitor/)")
        self.stdout.write(f"REST API:   http://{base}/api/   (docs: http://{base}/api/docs/)")
        self.stdout.write(f"WebSocket:  ws://{base}/ws/executions/")
        self.stdout.write(f"MCP:        http://{base}/mcp   (Authorization: Bearer <token>)")
        if not options["no_demo_user"]:
            username, password, token = self.demo_user()
            self.stdout.write(f"Demo user:  {username} / {password}   token: {token}")
            self.stdout.write(f"Try:        {python_command()} -m websockets 'ws://{base}/ws/executions/?token={token}'")
        CommandLineInterface().run(["-b", host, "-p", str(port), "config.asgi:application"])

    def demo_user(self) -> tuple[str, str, str]:
        """A staff user for trying things out; its password is kept beside the database."""
        password_file = settings.DATA_DIR / "demo_password"
        if not password_file.exists():
            settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
            password_file.write_text(secrets.token_urlsafe(12))
        password = password_file.read_text().strip()
        user, _ = get_user_model().objects.get_or_create(username="demo", defaults={"is_staff": True,
                                                                                   "is_superuser": True})
        if not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        token, _ = Token.objects.get_or_create(user=user)
        return user.username, password, token.key


def python_command() -> str:
    """This interpreter as a shell command: ``.venv/bin/python`` after ``./dev run``, whose
    ``python -m websockets`` works (a bare ``python`` would be the system's, without websockets)."""
    executable = Path(sys.executable)
    try:
        return shlex.quote(str(executable.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(os.fspath(executable))
