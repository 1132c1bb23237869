from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class FeedbackConfig(AppConfig):
    name = "feedback"
    verbose_name = "Customer feedback"

    def ready(self) -> None:
        from feedback.models import Question, Survey
        from feedback.selectors import invalidate_serving_surveys

        # Which surveys are served is cached on the offer hot path; a change clears it.
        for model in (Survey, Question):
            post_save.connect(invalidate_serving_surveys, sender=model, weak=False)
            post_delete.connect(invalidate_serving_surveys, sender=model, weak=False)
