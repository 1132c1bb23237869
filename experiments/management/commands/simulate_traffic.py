"""`manage.py simulate_traffic KEY --customers N [--lift X]`: drive a running experiment."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from experiments.models import Experiment, Status
from experiments.simulation import (
    ArmTruth,
    Scenario,
    SimulationError,
    Storefront,
    TrafficSimulator,
    progress_bar,
)
from recommendations.models import STRATEGY_KIND, ProductRelation, RelationStatus


class Command(BaseCommand):
    help = (
        "Simulate N customers reaching a running experiment's cross-sell moment through the real "
        "API (offers, events, survey answers), spread over the days since it started."
    )

    def add_arguments(self, parser):
        parser.add_argument("key", help="The experiment's key.")
        parser.add_argument("--customers", type=int, required=True)
        parser.add_argument(
            "--lift",
            type=float,
            default=0.0,
            help="True relative lift of every treatment on acceptance (0.2 = +20 %%).",
        )
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, key: str, customers: int, lift: float, seed: int, **options):
        experiment = Experiment.objects.filter(key=key).prefetch_related("variants").first()
        if experiment is None:
            raise CommandError(f"No experiment with key '{key}'.")
        if experiment.status != Status.RUNNING:
            raise CommandError(f"'{key}' is {experiment.status}; start it first.")
        if customers < 1:
            raise CommandError("--customers must be at least 1.")
        if lift <= -1:
            raise CommandError("--lift must be above -1 (-100 %).")
        anchors = tuple(
            ProductRelation.objects.filter(
                status=RelationStatus.APPROVED, kind=STRATEGY_KIND[experiment.strategy]
            )
            .values_list("source__sku", flat=True)
            .distinct()
        )
        if not anchors:
            raise CommandError(
                f"No approved {STRATEGY_KIND[experiment.strategy]} relations to recommend; "
                "curate or approve some first (admin → Product relations)."
            )
        base = experiment.baseline_rate
        arms = {
            v.key: ArmTruth(accept=base if v.is_control else min(base * (1 + lift), 1.0))
            for v in experiment.variants.all()
        }
        days = max(1, (timezone.now() - (experiment.started_at or timezone.now())).days)
        scenario = Scenario(
            experiment={
                "key": key,
                "trigger": experiment.trigger,
                "variants": [
                    {"key": v.key, "is_control": v.is_control} for v in experiment.variants.all()
                ],
            },
            arms=arms,
            anchor_skus=anchors,
            days=days,
            customers_per_day=max(1, round(customers / days)),
        )
        api = Storefront(name=f"simulate-{key}")
        simulator = TrafficSimulator(api, seed=seed, now=timezone.now() - timedelta(minutes=1))
        try:
            with progress_bar(customers, f"Simulating {key}") as bar:
                tally = simulator.run([scenario], progress=bar.update)
        except SimulationError as exc:
            raise CommandError(f"The simulated storefront was refused: {exc}") from exc
        finally:
            api.close()
        self.stdout.write(
            f"{tally.customers:,} customers, {tally.offers:,} offers "
            f"({tally.offers_in_experiment:,} in '{key}'), {tally.events:,} events, "
            f"{tally.survey_answers:,} survey answers. No offer: {tally.no_offer or 'none'}."
        )
