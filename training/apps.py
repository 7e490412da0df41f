from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Training and model registry"

    def ready(self):
        from . import receivers  # noqa: F401  (connects to features' signals)
