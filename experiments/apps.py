from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"
    verbose_name = "Experiments"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from experiments import schema, signals  # noqa: F401  (OpenAPI auth, cache invalidation)
        from experiments.models import Experiment, Variant

        auditlog.register(Experiment, exclude_fields=["updated_at"])
        auditlog.register(Variant)
