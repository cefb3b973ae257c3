from django.core.management.base import BaseCommand

from apps.runners.actions import do_create_registration_token
from apps.runs.choices import Environment


class Command(BaseCommand):
    help = (
        "Create a runner registration token. Prints the token alone on the last line (shown once)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--environment", choices=Environment.values, default=Environment.DEV)
        parser.add_argument("--name", default="", help="a label for operators")
        parser.add_argument(
            "--label", action="append", default=[], help="capability every runner gets"
        )

    def handle(self, *args, **opts):
        if len(opts["name"]) > 100:
            from django.core.management.base import CommandError

            raise CommandError("--name is at most 100 characters")
        row, token = do_create_registration_token(
            environment=opts["environment"], name=opts["name"], labels=opts["label"], actor="cli"
        )
        self.stdout.write(
            f"registration token {row.token_prefix} for {row.environment} "
            "(stored hashed; shown once)"
        )
        self.stdout.write(token)
