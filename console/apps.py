from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The DPO console: server-rendered pages over the other apps' services and selectors. It sits at the
    top of the house: it depends on every app below it, and nothing imports it."""

    name = "console"
