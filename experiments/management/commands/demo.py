"""`manage.py demo`: the embedded main job on the zero-config default (SQLite, eager Celery)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from tqdm import tqdm

from experiments import services
from experiments.models import Experiment
from experiments.selectors import assignment_counts, experiment_config

DEMO_USER, DEMO_PASSWORD = "growth", "offerlab-demo"


class Command(BaseCommand):
    help = "Seed a demo experiment, simulate storefront traffic and print the results."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=5000)

    def handle(self, *args, customers: int, **options):
        user = self._demo_user()
        experiment = self._demo_experiment(user)
        config = experiment_config(experiment.key)
        for i in tqdm(range(customers), desc="Assigning customers", unit="customer"):
            services.assignment_get_or_create(
                config=config,
                customer_id=f"demo-customer-{i}",
                attributes={"segment": ("new", "returning", "vip")[i % 3]},
            )
        counts = assignment_counts(experiment)
        total = sum(counts.values())
        self.stdout.write(f"\nExperiment '{experiment.key}' ({experiment.factor}), split:")
        for key, n in counts.items():
            share = n / total if total else 0
            self.stdout.write(f"  {key:<12} {n:>6,}  {share:6.1%}")
        self.stdout.write(
            f"\nAdmin: http://127.0.0.1:8000/admin/  login: {DEMO_USER} / {DEMO_PASSWORD}"
        )

    def _demo_user(self):
        user, _ = get_user_model().objects.get_or_create(
            username=DEMO_USER, defaults={"is_staff": True, "is_superuser": True}
        )
        user.set_password(DEMO_PASSWORD)
        user.save()
        return user

    def _demo_experiment(self, user) -> Experiment:
        existing = Experiment.objects.filter(key="demo-pp-email-timing").first()
        if existing:
            return existing
        message = {
            "subject": "Complete your setup",
            "body": "Customers who bought this also use {products}.",
            "cta": "See {count} picks",
        }
        experiment = services.experiment_create(
            actor=user,
            key="demo-pp-email-timing",
            name="Post-purchase email: now vs next day",
            hypothesis="A next-day email lands when the customer has unpacked and is ready.",
            factor="timing",
            trigger="post_purchase",
            traffic_percent=50,
            variants=[
                {
                    "key": "now",
                    "name": "Right away",
                    "is_control": True,
                    "channel": "email",
                    "timing": {"delay_hours": 0, "window_hours": 48},
                    "message": message,
                },
                {
                    "key": "next-day",
                    "name": "Next day",
                    "channel": "email",
                    "timing": {"delay_hours": 24, "window_hours": 48},
                    "message": message,
                },
            ],
        )
        services.experiment_transition(experiment=experiment, action="start", actor=user)
        return Experiment.objects.get(pk=experiment.pk)
