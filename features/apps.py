from django.apps import AppConfig


class FeaturesConfig(AppConfig):
    name = "features"
    verbose_name = "Features (feature store)"

    def ready(self):
        from . import receivers  # noqa: F401  (connects to ingestion's signals)
