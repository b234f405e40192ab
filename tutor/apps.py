from django.apps import AppConfig


class TutorConfig(AppConfig):
    name = "tutor"
    verbose_name = "Tutoring core"

    def ready(self) -> None:
        # Load the Celery app in every Django process so `shared_task(...).delay()` sends to the configured broker.
        # Kept out of tutor/__init__.py: the pure packages under tutor/ must import without Celery.
        import tutor.celery  # noqa: F401
