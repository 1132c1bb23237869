"""`manage.py demo`: the whole loop on the zero-config default (SQLite, eager Celery).

Seeds a catalogue with the three plays (completion, evolution, ecosystem) and a post-offer
survey, creates three experiments (one per factor), simulates weeks of storefront traffic
through the real API, analyses each experiment through Celery and prints the readiness reports.
"""

import dataclasses
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings
from django.utils import timezone
from tqdm import tqdm

from experiments.analysis import analysis_request
from experiments.models import AnalysisRun, Experiment
from experiments.report import render_text, report_for
from experiments.simulation import (
    ArmTruth,
    Scenario,
    SimulationError,
    Storefront,
    TrafficSimulator,
    expected_customers,
    progress_bar,
)

DEMO_USER, DEMO_PASSWORD = "growth", "offerlab-demo"

PRODUCTS = [
    # Completion: a runner's kit around the shoes.
    ("trail-shoe", "Trail running shoes", "running-shoes", "129.00"),
    ("merino-socks", "Merino running socks", "running-apparel", "18.00"),
    ("gel-insoles", "Gel insoles", "running-care", "24.00"),
    ("hydration-vest", "Hydration vest", "running-gear", "65.00"),
    # Evolution: plans a customer grows into.
    ("starter-plan", "Starter plan (1 year)", "plans", "49.00"),
    ("pro-plan", "Pro plan (1 year)", "plans", "129.00"),
    ("team-plan", "Team plan (1 year)", "plans", "299.00"),
    # Ecosystem: a smart home that works better together.
    ("smart-bulb", "Smart bulb", "lighting", "15.00"),
    ("smart-hub", "Smart hub", "hubs", "59.00"),
    ("motion-sensor", "Motion sensor", "security", "29.00"),
    ("door-camera", "Door camera", "security", "99.00"),
    ("gift-card", "Gift card", "gift", "25.00"),
]
RELATIONS = [
    ("trail-shoe", "merino-socks", "complement", True),
    ("trail-shoe", "gel-insoles", "complement", False),
    ("trail-shoe", "hydration-vest", "complement", False),
    ("starter-plan", "pro-plan", "upgrade", True),
    ("starter-plan", "team-plan", "upgrade", False),
    ("smart-bulb", "smart-hub", "ecosystem", True),
    ("smart-bulb", "motion-sensor", "ecosystem", False),
    ("smart-bulb", "door-camera", "ecosystem", False),
]
SURVEY = {
    "key": "offer-feedback",
    "name": "Was this suggestion helpful?",
    "trigger": "offer_shown",
    "sampling_rate": 0.6,
    "cooldown_days": 30,
    "active": True,
    "questions": [
        {
            "key": "helpful",
            "type": "rating",
            "text": "How helpful was this suggestion?",
            "metric": "csat",
        },
        {
            "key": "pushy",
            "type": "rating",
            "text": "How pushy did it feel? (1 = not at all)",
            "metric": "intrusiveness",
        },
    ],
}

_MESSAGE = {
    "subject": "Complete your kit",
    "body": "Runners who bought these also use {products}.",
    "cta": "See {count} picks",
}


def _variant(key, name, *, control=False, delay=0, channel="email", message=None):
    return {
        "key": key,
        "name": name,
        "is_control": control,
        "weight": 1,
        "timing": {"delay_hours": delay, "window_hours": 48},
        "channel": channel,
        "message": message or _MESSAGE,
    }


def scenarios() -> list[Scenario]:
    """Three experiments: one that should scale, one that should not, one that needs time."""
    guardrails = ["return_rate", "cart_abandonment_rate"]
    common = {
        "primary_metric": "acceptance_rate",
        "guardrail_metrics": guardrails,
        "alpha": 0.05,
        "power": 0.8,
        "min_days": 14,
        "safe_peeking": False,
    }
    timing = Scenario(
        experiment={
            **common,
            "key": "pp-email-timing",
            "name": "Post-purchase email: right away vs next day",
            "hypothesis": "A next-day email lands after the parcel did, when runners want the "
            "rest of the kit.",
            "factor": "timing",
            "trigger": "post_purchase",
            "strategy": "completion",
            "traffic_percent": 80,
            "layer": "post-purchase-email",
            "targeting": [{"attribute": "country", "op": "in", "value": ["DE", "FR", "NL"]}],
            "baseline_rate": 0.10,
            "mde": 0.05,
            "variants": [
                _variant("now", "Right away", control=True),
                _variant("next-day", "Next day", delay=24),
            ],
        },
        arms={"now": ArmTruth(accept=0.10), "next-day": ArmTruth(accept=0.20)},
        anchor_skus=("trail-shoe",),
        days=28,
        customers_per_day=70,
        novelty=0.3,
    )
    channel = Scenario(
        experiment={
            **common,
            "key": "cart-sms-vs-email",
            "name": "Abandoned cart: email vs SMS",
            "hypothesis": "SMS reaches people faster than email after they leave a cart.",
            "factor": "channel",
            "trigger": "cart_abandonment",
            "strategy": "ecosystem",
            "traffic_percent": 50,
            "layer": "",
            "baseline_rate": 0.08,
            "mde": 0.04,
            "variants": [
                _variant(
                    "email",
                    "Email",
                    control=True,
                    message={
                        "subject": "Your smart home, complete",
                        "body": "Pair it with {products}.",
                        "cta": "Shop the set",
                    },
                ),
                _variant(
                    "sms",
                    "SMS",
                    channel="sms",
                    message={
                        "subject": "Your smart home, complete",
                        "body": "Pair it with {products}.",
                        "cta": "Shop the set",
                    },
                ),
            ],
        },
        arms={
            "email": ArmTruth(accept=0.08, abandon=0.10),
            "sms": ArmTruth(
                accept=0.095,
                returns=0.25,
                abandon=0.22,
                pushy=0.55,
                csat=(0.12, 0.18, 0.30, 0.25, 0.15),
            ),
        },
        anchor_skus=("smart-bulb",),
        days=21,
        customers_per_day=50,
        novelty=0.0,
    )
    message = Scenario(
        experiment={
            **common,
            "key": "support-upgrade-message",
            "name": "After support: feature-led vs savings-led upgrade message",
            "hypothesis": "Customers who just got help respond to what they can do next.",
            "factor": "message",
            "trigger": "support_resolution",
            "strategy": "evolution",
            "traffic_percent": 20,
            "layer": "",
            "baseline_rate": 0.12,
            "mde": 0.03,
            "variants": [
                _variant(
                    "savings",
                    "Savings-led",
                    control=True,
                    channel="web",
                    message={
                        "subject": "Save with {product}",
                        "body": "Upgrade and save: {products}.",
                        "cta": "Upgrade",
                    },
                ),
                _variant(
                    "features",
                    "Feature-led",
                    channel="web",
                    message={
                        "subject": "Do more with {product}",
                        "body": "Unlock more: {products}.",
                        "cta": "Upgrade",
                    },
                ),
            ],
        },
        arms={"savings": ArmTruth(accept=0.12), "features": ArmTruth(accept=0.14)},
        anchor_skus=("starter-plan",),
        days=6,
        customers_per_day=60,
    )
    return [timing, channel, message]


class Command(BaseCommand):
    help = "Seed a catalogue and three experiments, simulate weeks of traffic, print readiness."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--scale",
            type=float,
            default=1.0,
            help="Multiply the simulated traffic (e.g. 0.3 for a quick look; 1 for the verdicts).",
        )

    def handle(self, *args, seed: int, scale: float, **options):
        started = time.monotonic()
        user = self._demo_user()
        demo = [
            dataclasses.replace(s, customers_per_day=max(1, round(s.customers_per_day * scale)))
            for s in scenarios()
        ]
        # Django logs every SQL statement when DEBUG is on; the simulation does not need that.
        with override_settings(DEBUG=False):
            if Experiment.objects.filter(key__in=[s.key for s in demo]).exists():
                self.stdout.write(
                    "The demo data exists already (from an earlier run): analysing it again. "
                    "For fresh traffic, start from a new database (rm db.sqlite3)."
                )
            else:
                self._simulate(demo, seed)
            for scenario in tqdm(demo, desc="Analysing (Celery)", unit="experiment"):
                run = analysis_request(
                    experiment=Experiment.objects.get(key=scenario.key), requested_by=user
                )
                run.refresh_from_db()
                if run.status != AnalysisRun.RunStatus.SUCCEEDED:
                    raise CommandError(f"Analysis of {scenario.key} {run.status}: {run.error}")
        for scenario in demo:
            experiment = Experiment.objects.get(key=scenario.key)
            self.stdout.write("\n" + render_text(report_for(experiment)))
        self.stdout.write(
            f"\nDone in {time.monotonic() - started:.0f} s at {timezone.now():%Y-%m-%d %H:%M} UTC."
            f"\nAdmin: http://127.0.0.1:8000/admin/  login: {DEMO_USER} / {DEMO_PASSWORD}"
            "\nResults: Experiments → an experiment → Results (charts, HTML export)."
        )

    def _simulate(self, demo: list[Scenario], seed: int) -> None:
        api = Storefront(name="demo-storefront")
        try:
            self._seed(api)
            simulator = TrafficSimulator(api, seed=seed)
            for scenario in demo:
                simulator.create_experiment(scenario)
            with progress_bar(expected_customers(demo), "Simulating storefront traffic") as bar:
                tally = simulator.run(demo, progress=bar.update)
                bar.total = bar.n
                bar.refresh()
        except SimulationError as exc:
            raise CommandError(f"The simulated storefront was refused: {exc}") from exc
        finally:
            api.close()
        self.stdout.write(
            f"\n{tally.customers:,} customers, {tally.offers:,} offers "
            f"({tally.offers_in_experiment:,} in an experiment), {tally.events:,} events, "
            f"{tally.survey_answers:,} survey answers."
        )

    def _demo_user(self):
        user, _ = get_user_model().objects.get_or_create(
            username=DEMO_USER, defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(DEMO_PASSWORD)
        user.save()
        return user

    def _seed(self, api: Storefront) -> None:
        api.post(
            "/api/v1/products",
            {
                "products": [
                    {"sku": sku, "name": name, "category": category, "price": price}
                    for sku, name, category, price in PRODUCTS
                ]
            },
        )
        for source, target, kind, pinned in RELATIONS:
            api.staff_post(
                "/api/v1/relations",
                {"source": source, "target": target, "kind": kind, "pinned": pinned},
                ok=(200, 201),
            )
        api.staff_post("/api/v1/feedback/surveys", SURVEY, ok=(201,))
