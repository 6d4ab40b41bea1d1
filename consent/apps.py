from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "consent"
    verbose_name = "Consent ledger"

    def ready(self) -> None:
        from consent.receivers import on_customers_merged
        from profiles.signals import customers_merged

        customers_merged.connect(on_customers_merged, dispatch_uid="consent.customers_merged")
        self._register_importer()

    @staticmethod
    def _register_importer() -> None:
        """Register the ``consent`` CSV importer with profiles' import registry (``import_csv --source consent``)."""
        try:
            from profiles import imports
        except ImportError:  # profiles' import framework not present (yet)
            return
        register = getattr(imports, "register_importer", None)
        if register is not None:
            from consent.importer import ConsentCsvImporter

            register("consent", ConsentCsvImporter())
