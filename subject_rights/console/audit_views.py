"""Console pages (placeholder until implemented)."""

urlpatterns: list = []
