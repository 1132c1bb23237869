from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Recommendations & offers"

    def ready(self) -> None:
        from recommendations import signals  # noqa: F401  (connects the cache invalidation)
