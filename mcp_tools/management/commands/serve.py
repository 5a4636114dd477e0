"""``python manage.py serve``: the whole service in one process.

Migrates the database, loads gantz.yaml, makes sure a demo user with an API
token exists, prints where to connect, and runs daphne. With no settings this
is the embedded default (SQLite, in-memory channel layer and broker, a Celery
worker thread inside this process).

Safe by default: it listens on 127.0.0.1 (another address is said loudly),
the demo user is an ordinary user (``--demo-admin`` makes it a superuser),
and its password and token are printed once, when they are created; later
runs say where to find them. The password file is private (0600, in the 0700
``DATA_DIR``).
"""

from __future__ import annotations

import ipaddress
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

from config.private_files import write_private

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = "Set up (migrate, sync_tools, demo user) and run the service with daphne."

    def add_arguments(self, parser):
        parser.add_argument(
            "--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1: this machine only)."
        )
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo-user", action="store_true", help="Do not create the demo user.")
        parser.add_argument(
            "--demo-admin",
            action="store_true",
            help="Make the demo user a superuser (the admin, the live monitor); without it the "
            "demo user is an ordinary user.",
        )

    def handle(self, *args, **options):
        host, port = options["host"], options["port"]
        self.warn_if_reachable_from_outside(host)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("sync_tools", verbosity=0)
        base = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        # Where this process's tools reach the service itself (gantz.yaml's service_health: ${SERVICE_URL}).
        reachable = f"127.0.0.1:{port}" if host in ("0.0.0.0", "::", "") else base
        os.environ.setdefault("SERVICE_URL", f"http://{reachable}")
        self.stdout.write(f"Mode: {'production (Redis)' if settings.PRODUCTION else 'embedded default'}")
        self.stdout.write(f"Web page:   http://{base}/")
        self.stdout.write(f"Admin:      http://{base}/admin/   (monitor: http://{base}/admin/monitor/)")
        self.stdout.write(f"REST API:   http://{base}/api/   (docs: http://{base}/api/docs/)")
        self.stdout.write(f"WebSocket:  ws://{base}/ws/executions/")
        self.stdout.write(f"MCP:        http://{base}/mcp   (Authorization: Bearer <token>)")
        if not options["no_demo_user"]:
            self.show_demo_user(base, admin=options["demo_admin"])
        CommandLineInterface().run(["-b", host, "-p", str(port), "config.asgi:application"])

    def warn_if_reachable_from_outside(self, host: str) -> None:
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:  # a host name: it may resolve to anything
            loopback, wildcard = host == "localhost", False
        else:
            loopback, wildcard = address.is_loopback, address.is_unspecified
        if loopback:
            return
        reach = "EVERY network interface of this machine" if wildcard else f"the network behind {host}"
        self.stderr.write(
            self.style.WARNING(
                f"WARNING: listening on {host} makes the service reachable from {reach}, over plain HTTP "
                f"(passwords and tokens readable on the wire), with the demo user's known password. Use it only on a "
                f"network you trust; for a real deployment put it behind TLS (README: Production topology)."
            )
        )

    def show_demo_user(self, base: str, *, admin: bool) -> None:
        username, password, token, created = self.demo_user(admin=admin)
        password_file = settings.DATA_DIR / "demo_password"
        role = "superuser" if admin else "ordinary user; --demo-admin makes it a superuser"
        if created:
            self.stdout.write(f"Demo user:  {username} / {password}   token: {token}   ({role})")
            self.stdout.write(
                f"            (shown this once; the password stays in {password_file}, readable by you only)"
            )
            self.stdout.write(
                f"Try:        {python_command()} -m websockets 'ws://{base}/ws/executions/?token={token}'"
            )
        else:
            self.stdout.write(
                f"Demo user:  {username} ({role}); password in {password_file}, "
                f"token: python manage.py drf_create_token {username}"
            )
            self.stdout.write(
                f"Try:        {python_command()} -m websockets 'ws://{base}/ws/executions/?token=<token>'"
            )

    def demo_user(self, *, admin: bool) -> tuple[str, str, str, bool]:
        """The demo user (created now or earlier), its password and token, and whether they are new.

        The demo user belongs to this command: its password is reset to the file's
        and its admin rights follow ``--demo-admin`` on every run."""
        password_file = settings.DATA_DIR / "demo_password"
        if not password_file.exists():
            write_private(password_file, secrets.token_urlsafe(12))
        password = password_file.read_text().strip()
        user, user_created = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        changed = []
        if not user.check_password(password):
            user.set_password(password)
            changed.append("password")
        if (user.is_staff, user.is_superuser) != (admin, admin):
            user.is_staff = user.is_superuser = admin
            changed += ["is_staff", "is_superuser"]
        if changed:
            user.save(update_fields=changed)
        token, token_created = Token.objects.get_or_create(user=user)
        return user.username, password, token.key, user_created or token_created


def python_command() -> str:
    """This interpreter as a shell command: ``.venv/bin/python`` after ``./dev run``, whose
    ``python -m websockets`` works (a bare ``python`` would be the system's, without websockets)."""
    executable = Path(sys.executable)
    try:
        return shlex.quote(str(executable.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(os.fspath(executable))
