from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.apitokens.actions import do_create_api_token

MAX_DAYS = 3650


class Command(BaseCommand):
    help = (
        "Create an API token for USER (Authorization: Token <token>). Prints the token alone "
        "on the last line; it is stored only as a hash and shown once."
    )

    def add_arguments(self, parser):
        parser.add_argument("user")
        parser.add_argument("--name", default="", help="a label, e.g. what uses the token")
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"valid for this many days (default DELTACI_API_TOKEN_DAYS, at most {MAX_DAYS})",
        )

    def handle(self, *args, **opts):
        user = get_user_model().objects.filter(username=opts["user"]).first()
        if user is None or not user.is_active:
            raise CommandError(f"no active user named {opts['user']!r}")
        if len(opts["name"]) > 100 or not opts["name"].isprintable():
            raise CommandError("--name is at most 100 printable characters")
        days = settings.DELTACI_API_TOKEN_DAYS if opts["days"] is None else opts["days"]
        if not 0 < days <= MAX_DAYS:
            raise CommandError(f"--days must be between 1 and {MAX_DAYS}")
        row, token = do_create_api_token(
            user,
            name=opts["name"],
            expires_at=timezone.now() + timedelta(days=days),
            actor="cli",
        )
        self.stdout.write(
            f"API token {row.token_prefix} for {user.get_username()}, expires "
            f"{row.expires_at:%Y-%m-%d} (stored hashed; shown once)"
        )
        self.stdout.write(token)
