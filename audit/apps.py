from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit and accountability"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.backends.signals import connection_created

        if getattr(settings, "AUDIT_ALLOW_TRUNCATE", False):
            connection_created.connect(_allow_truncate, dispatch_uid="audit.allow_truncate")

        from audit import embedded  # embedded mode: seal and sign the head on a timer (runserver only)

        embedded.start_if_embedded()


def _allow_truncate(sender: object, connection: object, **kwargs: object) -> None:
    """Test databases only (settings.AUDIT_ALLOW_TRUNCATE): let Django's flush TRUNCATE audit tables.
    UPDATE and DELETE stay refused."""
    if getattr(connection, "vendor", None) != "postgresql":
        return
    with connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute("SET audit.allow_truncate = 'on'")
