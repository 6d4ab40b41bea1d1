from django.db import migrations


def external_storage(apps, schema_editor):
    """PostgreSQL: the sealed details are ciphertext (incompressible): stored out of line without a
    compression attempt on every decision written. Storage only: reads and content hashes are unchanged."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute('ALTER TABLE "audit_decisionrecord" ALTER COLUMN "sealed_details" SET STORAGE EXTERNAL')


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0007_decision_type_holdout_assignment"),
    ]

    operations = [
        migrations.RunPython(external_storage, migrations.RunPython.noop),
    ]
