"""The first admin account. The password comes from DELTACI_ADMIN_PASSWORD (so no
generated password can ever be parsed as an option) or --password=VALUE."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create a superuser with the given password unless one with that name exists."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", help="default: $DELTACI_ADMIN_PASSWORD")

    def handle(self, *args, **opts):
        password = opts["password"] or os.environ.get("DELTACI_ADMIN_PASSWORD", "")
        if not password:
            raise CommandError("give --password=VALUE or set DELTACI_ADMIN_PASSWORD")
        User = get_user_model()
        if User.objects.filter(username=opts["username"]).exists():
            self.stdout.write("exists")
            return
        User.objects.create_superuser(opts["username"], "", password)
        self.stdout.write("created")
