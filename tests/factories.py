"""factory_boy factories shared by the suite."""

import factory

from experiments.models import Experiment, Factor, Status, Variant
from experiments.moments import Trigger


class ExperimentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Experiment

    key = factory.Sequence(lambda n: f"exp-{n}")
    name = factory.LazyAttribute(lambda o: f"Experiment {o.key}")
    factor = Factor.TIMING
    trigger = Trigger.POST_PURCHASE
    traffic_percent = 100.0
    status = Status.DRAFT


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    experiment = factory.SubFactory(ExperimentFactory)
    key = factory.Sequence(lambda n: f"v{n}")
    name = factory.LazyAttribute(lambda o: o.key)
    weight = 1.0
    channel = "email"
    timing = factory.LazyFunction(lambda: {"delay_hours": 0, "window_hours": 48})
    message = factory.LazyFunction(
        lambda: {"subject": "You might like", "body": "Try {products}", "cta": "Shop now"}
    )


def running_experiment(key: str = "pp-timing", *, delays=(0, 24), weights=None, **fields):
    """A started timing experiment with a control and one variant per extra delay."""
    weights = weights or [1.0] * len(delays)
    experiment = ExperimentFactory(key=key, status=Status.RUNNING, **fields)
    for i, (delay, weight) in enumerate(zip(delays, weights, strict=True)):
        VariantFactory(
            experiment=experiment,
            key="control" if i == 0 else f"delay-{delay}",
            is_control=i == 0,
            weight=weight,
            timing={"delay_hours": delay, "window_hours": 48},
            position=i,
        )
    return experiment
