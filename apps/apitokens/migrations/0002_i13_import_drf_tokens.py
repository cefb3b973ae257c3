"""Existing DRF tokens (rest_framework.authtoken, 160-bit keys stored in clear) become
hashed API tokens that keep working for 30 days, then expire; their clear keys are
deleted. Clients should move to a new token from `create_api_token` before then (the
old keys are weaker than the contract's 256 bits). A database that never had DRF
tokens has nothing to import."""

import hashlib
from datetime import timedelta

from django.db import migrations
from django.utils import timezone

GRACE = timedelta(days=30)
TABLE = "authtoken_token"


def import_drf_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if TABLE not in connection.introspection.table_names():
        return
    api_token = apps.get_model("apitokens", "ApiToken")
    expires = timezone.now() + GRACE
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "key", "user_id", "created" FROM {TABLE}')  # noqa: S608
        rows = cursor.fetchall()
        for key, user_id, created in rows:
            digest = hashlib.sha256(key.encode()).hexdigest()
            api_token.objects.using(connection.alias).get_or_create(
                token_hash=digest,
                defaults={
                    "user_id": user_id,
                    "name": "imported DRF token (expires after 30 days)",
                    "token_prefix": digest[:12],
                    "created_by": "migration",
                    "expires_at": expires,
                },
            )
        cursor.execute(f"DELETE FROM {TABLE}")  # noqa: S608 - no clear-text key stays behind


class Migration(migrations.Migration):
    dependencies = [("apitokens", "0001_initial")]

    operations = [migrations.RunPython(import_drf_tokens, migrations.RunPython.noop)]
