"""The simulator drives the real API end to end, and the demo shows the whole loop.

The seeded simulation below is the demo's three experiments, made small: bigger true effects
and a bigger minimum detectable effect, so a few hundred customers settle each verdict.
"""

import dataclasses
import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.utils import timezone

from experiments.analysis import analysis_run
from experiments.management.commands import demo
from experiments.models import Experiment
from experiments.simulation import ArmTruth, Storefront, TrafficSimulator
from recommendations.models import Offer

pytestmark = pytest.mark.django_db


def _small(scenario, *, mde, per_day, arms=None):
    return dataclasses.replace(
        scenario,
        experiment={**scenario.experiment, "mde": mde},
        customers_per_day=per_day,
        arms=arms or scenario.arms,
    )


def small_scenarios():
    timing, channel, message = demo.scenarios()
    return [
        _small(
            timing,
            mde=0.12,
            per_day=30,
            arms={"now": ArmTruth(accept=0.20), "next-day": ArmTruth(accept=0.45)},
        ),
        _small(
            channel,
            mde=0.12,
            per_day=20,
            arms={
                "email": ArmTruth(accept=0.08, abandon=0.05),
                "sms": ArmTruth(
                    accept=0.09,
                    abandon=0.40,
                    returns=0.4,
                    pushy=0.7,
                    csat=(0.3, 0.3, 0.2, 0.1, 0.1),
                ),
            },
        ),
        _small(message, mde=0.05, per_day=20),
    ]


def _seeded_api():
    api = Storefront(name="test-simulator")
    demo.Command()._seed(api)
    return api


def _last_monday():
    """Weeks line up the same whatever day the test runs (ISO weeks start on Monday)."""
    now = timezone.now()
    return (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)


def test_seeded_simulation_yields_scale_stop_and_keep_testing(settings, monkeypatch):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Survey every offer: sampling hashes the random offer id, which would vary between runs.
    monkeypatch.setitem(demo.SURVEY, "sampling_rate", 1.0)
    scenarios = small_scenarios()
    api = _seeded_api()
    simulator = TrafficSimulator(api, seed=11, now=_last_monday())
    for scenario in scenarios:
        simulator.create_experiment(scenario)
    tally = simulator.run(scenarios)
    api.close()

    assert tally.offers_in_experiment > 300
    assert tally.events > 500 and tally.survey_answers > 20
    # Offers went through the API and carry their experiment.
    assert Offer.objects.filter(experiment__key="pp-email-timing").exists()
    verdicts, criteria = {}, {}
    for scenario in scenarios:
        run = analysis_run(experiment=Experiment.objects.get(key=scenario.key))
        assert run.status == "succeeded", run.error
        verdicts[scenario.key] = (run.readiness["verdict"], run.readiness["recommended_variant"])
        criteria[scenario.key] = [
            (c["key"], c["status"], c["detail"]) for c in run.readiness["criteria"]
        ]
    assert verdicts == {
        "pp-email-timing": ("ready_to_scale", "next-day"),
        "cart-sms-vs-email": ("do_not_scale", "email"),
        "support-upgrade-message": ("keep_testing", "savings"),
    }, "\n".join(f"{k}: {c}" for k, v in criteria.items() for c in v)


def test_simulation_draws_are_fixed_by_the_seed():
    scenario = small_scenarios()[2]
    api = Storefront(name="test-simulator")
    now = TrafficSimulator(api, seed=5).now

    def arrivals(seed):
        return list(TrafficSimulator(api, seed=seed, now=now).arrivals(scenario))

    assert arrivals(5) == arrivals(5)
    assert arrivals(5) != arrivals(6)


@pytest.mark.django_db(transaction=True)  # the demo queues analyses on commit, as in production
def test_demo_command_prints_three_reports_and_a_working_login(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    out = io.StringIO()
    call_command("demo", "--scale", "0.05", stdout=out, stderr=io.StringIO())
    output = out.getvalue()

    for key in ("pp-email-timing", "cart-sms-vs-email", "support-upgrade-message"):
        assert f"({key})" in output
    assert len(re.findall(r"^VERDICT: ", output, re.M)) == 3
    login = re.search(r"login: (\S+) / (\S+)", output)
    user = authenticate(username=login.group(1), password=login.group(2))
    assert user is not None and user.is_staff

    # A second run re-analyses the same data instead of failing or duplicating it.
    offers = Offer.objects.count()
    again = io.StringIO()
    call_command("demo", "--scale", "0.05", stdout=again, stderr=io.StringIO())
    assert "exists already" in again.getvalue()
    assert Offer.objects.count() == offers
