"""Index-friendly model-version search for decision records.

Adds ``model_version_1`` / ``model_version_2``: a decision's distinct model versions (code-point order, the
second NULL when all models share one version), each with a ``(version, created_at, id)`` index, and drops
the index on the mixed ``model_version`` text, which the search no longer uses (a version inside its
``name=version;...`` form needed a LIKE '%..%' that no index serves).

The new columns are not part of the hashed canonical form (adding them would change the hash of every
existing record); they are derived from the hashed ``model_versions``, and ``audit_verify`` checks that
they still are. Backfilling existing rows is an UPDATE, which the append-only trigger (0003) refuses: on
PostgreSQL this migration disables that trigger for the one UPDATE statement and enables it again in the
same transaction (``ALTER TABLE`` holds an exclusive lock until commit, so no other session can write while
the trigger is off). Hashed columns are not touched, so the chain stays valid.
"""

import json

from django.db import migrations, models

TABLE = "audit_decisionrecord"
VERSION_LENGTH = 64

# The distinct values of model_versions in code-point order (COLLATE "C" on UTF-8 is code-point order, like
# Python's sorted()), the first two of them: audit.models.model_version_columns.
BACKFILL_SQL = f"""
UPDATE "{TABLE}" SET ("model_version_1", "model_version_2") = (
    SELECT COALESCE(pg_catalog.left(x.a[1], {VERSION_LENGTH}), ''), pg_catalog.left(x.a[2], {VERSION_LENGTH})
    FROM (SELECT ARRAY(SELECT DISTINCT e.value COLLATE "C"
                       FROM pg_catalog.json_each_text("model_versions"::json) e
                       WHERE e.value IS NOT NULL ORDER BY 1) AS a) x
)
WHERE "model_versions" <> '{{}}'
"""  # noqa: S608 - constants only


def backfill(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        schema_editor.execute(f'ALTER TABLE "{TABLE}" DISABLE TRIGGER audit_append_only')
        schema_editor.execute(BACKFILL_SQL)
        schema_editor.execute(f'ALTER TABLE "{TABLE}" ENABLE TRIGGER audit_append_only')
        return
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "id", "model_versions" FROM "{TABLE}" WHERE "model_versions" <> %s',  # noqa: S608
                       ["{}"])
        rows = cursor.fetchall()
        for row_id, text in rows:
            distinct = sorted({str(v) for v in json.loads(text).values() if v is not None})
            first = distinct[0][:VERSION_LENGTH] if distinct else ""
            second = distinct[1][:VERSION_LENGTH] if len(distinct) > 1 else None
            cursor.execute(f'UPDATE "{TABLE}" SET "model_version_1" = %s, "model_version_2" = %s WHERE "id" = %s',  # noqa: S608
                           [first, second, row_id])


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_breach_register")]

    operations = [
        migrations.RemoveIndex(model_name="decisionrecord", name="audit_dec_model"),
        migrations.AddField(
            model_name="decisionrecord",
            name="model_version_1",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="decisionrecord",
            name="model_version_2",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=False),
        migrations.AddIndex(
            model_name="decisionrecord",
            index=models.Index(fields=["model_version_1", "created_at", "id"], name="audit_dec_model_1"),
        ),
        migrations.AddIndex(
            model_name="decisionrecord",
            index=models.Index(condition=models.Q(model_version_2__isnull=False),
                               fields=["model_version_2", "created_at", "id"], name="audit_dec_model_2"),
        ),
    ]
