from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit and accountability"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.backends.signals import connection_created
        from django.db.models.signals import pre_delete, pre_save

        from audit.api_clients import token_cache_hold_on_change
        from audit.models import ApiClient

        # The shared token cache is held before any change of a client (immediate revocation everywhere).
        pre_save.connect(token_cache_hold_on_change, sender=ApiClient, dispatch_uid="audit.api_client_hold_save")
        pre_delete.connect(token_cache_hold_on_change, sender=ApiClient, dispatch_uid="audit.api_client_hold_delete")
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
