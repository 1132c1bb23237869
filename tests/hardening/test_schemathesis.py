"""Schemathesis against Offerlab's own OpenAPI schema (drf-spectacular), every check on.

Each operation is fuzzed in-process through the WSGI app with a bounded, derandomized number of
examples (OFFERLAB_FUZZ_EXAMPLES, default 25 per operation, so CI stays within a few minutes):
storefront operations with a real API key, staff operations with a staff token, the public survey
operations with nothing. The database is seeded first so the fuzzer reaches real code: a running
experiment with an analysis, products with a relation, an offer with its survey token.

Every response must be: not a 5xx; a documented status code with the documented body, content
type and headers; 4xx for invalid data and 2xx for valid data where the request can succeed;
401/403 when the credentials are removed; 405 for a method the path does not support.

The few rules JSON Schema cannot state (two values compared, or a bound relative to the clock)
are documented in the field descriptions; for schema-valid bodies the test repairs the generated
values to meet them (`REPAIRS`), so valid data must be accepted on every operation too.
"""

import copy
import itertools
import os
from collections import Counter
from datetime import timedelta

import pytest
import schemathesis
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.utils import timezone
from hypothesis import HealthCheck, settings
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework_api_key.models import APIKey
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection

from experiments.apis.experiments import ExperimentInputSerializer
from experiments.models import RATE_METRICS, AnalysisRun, Factor
from feedback.models import MAX_CHOICE_LENGTH
from recommendations.models import Product, ProductRelation, RelationStatus
from recommendations.offers import MAX_FUTURE_SKEW
from tests.factories import running_experiment
from tests.feedback.conftest import make_offer, make_survey

MAX_EXAMPLES = int(os.environ.get("OFFERLAB_FUZZ_EXAMPLES", "25"))
SEEDED_KEY = "fuzz-exp"
SEEDED_SKU = "CAM-1"  # related to LENS-1 in the seeded catalogue
# Batch endpoints validate each item on its own: a bad item is reported in the 200 body's
# `rejected` list while the good ones are stored, so an invalid item is not a rejected request.
BATCH_OPERATIONS = {"/api/v1/events", "/api/v1/products"}


# --- Repairs: the rules JSON Schema cannot state ---------------------------------------------
# Each takes a body that is already schema-valid and changes only values of the right shape, so
# it never makes an invalid body valid; Schemathesis re-validates a changed body, and the test
# checks that it is still schema-valid.


def _renumbered(values: list[str], max_length: int, same=lambda value: value) -> list[str]:
    """`values` with every repeat (compared through `same`) given a "-N" suffix, still unique."""
    taken = {same(value) for value in values}
    seen, result = set(), []
    for value in values:
        if same(value) in seen:
            number = 2
            while same(value[: max_length - len(f"-{number}")] + f"-{number}") in taken:
                number += 1
            value = value[: max_length - len(f"-{number}")] + f"-{number}"
            taken.add(same(value))
        seen.add(same(value))
        result.append(value)
    return result


def _objects(body: dict, name: str) -> list[dict] | None:
    """``body[name]`` when it is a list of objects (else the repairs leave it alone)."""
    items = body.get(name)
    if isinstance(items, list) and all(isinstance(item, dict) for item in items):
        return items
    return None


def _unique_keys(items: list[dict], max_length: int) -> None:
    keys = [item.get("key") for item in items]
    if all(isinstance(key, str) for key in keys):
        for item, key in zip(items, _renumbered(keys, max_length), strict=True):
            item["key"] = key


_EXPERIMENT_FIELDS = ExperimentInputSerializer().fields
_fresh = itertools.count(1)


def _fresh_key(body: dict, name: str = "key", max_length: int = 100) -> None:
    """A key no earlier example took: a taken key is a 409 (tested on its own), and the
    generator repeats short keys ("0", "a"), so most valid bodies would stop there."""
    key = body.get(name)
    if isinstance(key, str):
        suffix = f"-{next(_fresh)}"
        body[name] = key[: max_length - len(suffix)] + suffix


def _repair_experiment(body: dict) -> None:
    # Exactly one control is in the schema (`contains`); the other rules compare two values.
    _fresh_key(body)
    layer_slice = body.get("layer_slice")
    if isinstance(layer_slice, list) and len(layer_slice) == 2:
        # The slice ends after it starts: Experiment.clean and its check constraint
        # (experiments/models.py). Put the ends in order; an empty slice runs to 1 (or is [0, 1]).
        start, end = sorted(layer_slice)
        if start == end:
            start, end = (start, 1.0) if end < 1 else (0.0, 1.0)
        body["layer_slice"] = [start, end]
    metric = body.get("primary_metric", _EXPERIMENT_FIELDS["primary_metric"].default)
    baseline = body.get("baseline_rate", _EXPERIMENT_FIELDS["baseline_rate"].default)
    mde = body.get("mde", _EXPERIMENT_FIELDS["mde"].default)
    if metric in RATE_METRICS and baseline + mde >= 1:
        # baseline_rate + mde below 1 for a rate metric: Experiment.clean (experiments/models.py).
        # Keep the baseline where it leaves room, and take half of what is left above it.
        if baseline > 0.5:
            body["baseline_rate"] = baseline = 0.5
        body["mde"] = (1 - baseline) / 2
    variants = _objects(body, "variants")
    if variants is None:
        return
    # Variant keys unique within the experiment: services.variants_validate (and the
    # variant_key_unique constraint).
    _unique_keys(variants, 100)
    factor = body.get("factor")
    if factor in Factor.values:
        # Variants differ only in the factor: services.variants_validate. The other two of
        # timing, channel and message become the first variant's (present or left out alike).
        first = variants[0]
        for other in variants[1:]:
            for name in (n for n in ("timing", "channel", "message") if n != factor):
                if name in first:
                    other[name] = copy.deepcopy(first[name])
                else:
                    other.pop(name, None)


def _repair_survey(body: dict) -> None:
    # Which fields each question type takes is in the schema (if/then on `type`).
    _fresh_key(body)
    questions = _objects(body, "questions")
    if questions is None:
        return
    # Question keys unique within the survey: feedback/services.survey_create.
    _unique_keys(questions, 64)
    for question in questions:
        choices = question.get("choices")
        if isinstance(choices, list) and all(isinstance(c, str) for c in choices):
            # Choices different once trimmed (the schema says `uniqueItems` on the raw text):
            # Question.clean (feedback/models.py), after DRF trims each one.
            question["choices"] = _renumbered(choices, MAX_CHOICE_LENGTH, same=str.strip)


_DATETIME = serializers.DateTimeField()


def _repair_offer(body: dict) -> None:
    context = body.get("context")
    if not isinstance(context, dict):
        return
    # Not rules: every other valid body is steered to where an offer can be served (ranking, the
    # cap ledger, the Offer insert and its survey) — a sku the seeded catalogue relates to
    # another, a new customer (the generator repeats "0", whom the caps soon stop), a moment
    # inside the trigger's window. The others keep what was generated (unknown skus, old moments:
    # a 200 with no offer and its reason).
    served = next(_fresh) % 2 == 0
    skus = context.get("skus")
    if served and isinstance(skus, list) and len(skus) < 100 and SEEDED_SKU not in skus:
        context["skus"] = [*skus, SEEDED_SKU]
        _fresh_key(body, name="customer_id", max_length=255)
    if not isinstance(context.get("occurred_at"), str):
        return
    try:
        occurred_at = _DATETIME.to_internal_value(context["occurred_at"])
    except (serializers.ValidationError, ValueError, OverflowError):
        return  # not for this repair: the server's answer to it is checked as it is
    # At most MAX_FUTURE_SKEW ahead of the server's clock: validate_occurred_at in
    # recommendations/apis/offers.py and offer_create in recommendations/offers.py. A moment later
    # than that (with a minute to spare for the request itself) happened now.
    if served or occurred_at - timezone.now() > MAX_FUTURE_SKEW - timedelta(minutes=1):
        context["occurred_at"] = timezone.now().isoformat()


REPAIRS = {
    ("POST", "/api/v1/experiments"): _repair_experiment,
    ("POST", "/api/v1/feedback/surveys"): _repair_survey,
    ("POST", "/api/v1/offers"): _repair_offer,
}


def _repair(case) -> None:
    """Apply the operation's repair to a schema-valid body (a schema-invalid one stays as is)."""
    repair = REPAIRS.get((case.operation.method.upper(), case.operation.path))
    if repair is None or not isinstance(case.body, dict):
        return
    if case.meta is None or case.meta.is_negative_at(ParameterLocation.BODY):
        return
    body = copy.deepcopy(case.body)
    repair(body)
    if body != case.body:
        case.body = body
        assert not case.meta.is_negative_at(ParameterLocation.BODY), "repair broke the schema"


@pytest.fixture
def seeded(transactional_db, django_user_model):
    """Real rows for every kind of resource, and the credentials for each audience.

    Transactional: every request commits on its own as in production, so a request the database
    refuses (a constraint, a bad value) cannot abort the test's transaction for the ones after.
    """
    experiment = running_experiment(SEEDED_KEY)
    run = AnalysisRun.objects.create(experiment=experiment)
    products = [
        Product.objects.create(sku=sku, name=name, category=category, price=price)
        for sku, name, category, price in [
            ("CAM-1", "Camera", "cameras", "499.00"),
            ("LENS-1", "Lens cloth", "care", "4.90"),
            ("CASE-1", "Hard case", "cases", "19.00"),
        ]
    ]
    ProductRelation.objects.create(
        source=products[0], target=products[1], kind="complement", status=RelationStatus.APPROVED
    )
    offer = make_offer(experiment=experiment, variant=experiment.variants.first())
    survey = make_survey(key="fuzz-survey")
    from feedback.services import survey_for_offer

    token = survey_for_offer(offer=offer)["token"]
    _, api_key = APIKey.objects.create_key(name="fuzz-storefront")
    staff = django_user_model.objects.create_user(
        username="fuzz-staff", password="fuzz-pass-123", is_staff=True, is_superuser=True
    )
    return {
        "experiment": experiment,
        "run": run,
        "survey": survey,
        "token": token,
        "api_key": api_key,
        "staff_token": Token.objects.create(user=staff).key,
        "at": timezone.now(),
    }


@pytest.fixture
def api_schema(seeded, settings):
    # One fuzzer from one address with one key: the throttles would answer 429 (documented, but
    # it would hide everything else); they have their own tests in test_security.py.
    for scope in ("storefront", "storefront_ip", "survey_token", "survey_ip", "auth_failure"):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {
                **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                scope: "1000000/min",
            },
        }
    from rest_framework.throttling import SimpleRateThrottle

    rates = {**SimpleRateThrottle.THROTTLE_RATES}
    SimpleRateThrottle.THROTTLE_RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    cache.clear()
    yield
    SimpleRateThrottle.THROTTLE_RATES = rates


_tally = {"requests": 0, "server_errors": 0, "operations": set(), "created": Counter()}


@pytest.fixture(scope="module", autouse=True)
def _report_tally(request):
    """Prints the figure the README quotes: calls made and 5xx seen."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter and capture and _tally["requests"]:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"\nschemathesis: {_tally['requests']} generated requests over "
                f"{len(_tally['operations'])} operations, {_tally['server_errors']} server errors; "
                "201 Created: "
                + ", ".join(f"{label} {n}" for label, n in sorted(_tally["created"].items()))
            )


# The schema is what the running app serves at /api/schema/ (generating it touches no database).
schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


def _credentials(case, seeded) -> dict:
    security = case.operation.definition.raw.get("security") or []
    schemes = {name for requirement in security for name in requirement}
    if "ApiKeyAuth" in schemes:
        return {"Authorization": f"Api-Key {seeded['api_key']}"}
    if "tokenAuth" in schemes:
        return {"Authorization": f"Token {seeded['staff_token']}"}
    return {}


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, seeded, api_schema):
    # Staff operations also accept a session cookie; a generated one is noise next to the token.
    if case.cookies:
        case.cookies.pop("sessionid", None)
    _repair(case)
    excluded = []
    if case.operation.path in BATCH_OPERATIONS:
        excluded.append(negative_data_rejection)
    _tally["operations"].add(case.operation.label)
    _tally["requests"] += 1
    try:
        response = case.call_and_validate(
            headers=_credentials(case, seeded), excluded_checks=excluded
        )
    except Exception as exc:
        _tally["server_errors"] += "ST101" in str(exc) or "Server error" in str(exc)
        raise
    _tally["server_errors"] += response.status_code >= 500
    if response.status_code == 201:
        _tally["created"][case.operation.label] += 1
