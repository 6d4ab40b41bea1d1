"""Append-only audit tables on PostgreSQL: a trigger refuses UPDATE, DELETE and TRUNCATE.

TRUNCATE is let through only when the session sets ``audit.allow_truncate = on`` (the test suite does,
so Django's test-database flush works; see ``audit.apps``). UPDATE and DELETE are always refused. A
database owner can still disable triggers: that is what the hash chain and the externally stored signed
checkpoints are for. On other databases this migration does nothing (the ORM refuses there too).
"""

from django.db import migrations

TABLES = (
    "audit_decisionrecord",
    "audit_humanreview",
    "audit_accessrecord",
    "audit_governanceevent",
    "audit_chainlink",
    "audit_checkpoint",
    "audit_verificationrun",
)

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND coalesce(current_setting('audit.allow_truncate', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)
    for table in TABLES:
        schema_editor.execute(
            f'CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON "{table}" '
            "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
        )
        schema_editor.execute(
            f'CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON "{table}" '
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f'DROP TRIGGER IF EXISTS audit_append_only ON "{table}"')
        schema_editor.execute(f'DROP TRIGGER IF EXISTS audit_no_truncate ON "{table}"')
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_accountability_records")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
