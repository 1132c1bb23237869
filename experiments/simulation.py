"""A generative model of storefront traffic that drives Offerlab through its public API.

Customers (with a segment and a purchase history) reach a cross-sell moment, the storefront asks
for an offer (POST /api/v1/offers), reports what happened (POST /api/v1/events) and the customer
sometimes answers the survey (POST /api/v1/feedback/responses). True effects depend on the
variant, the segment and the week (a novelty effect that fades). Time is laid over past days
with time-machine, so assignments, offers and events carry realistic timestamps. Deterministic
for a given seed.
"""

import heapq
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey
from tqdm import tqdm

SEGMENTS = ("new", "returning", "vip")
SEGMENT_SHARES = (0.5, 0.35, 0.15)
COUNTRIES = ("DE", "FR", "NL", "BE")
COUNTRY_SHARES = (0.4, 0.3, 0.2, 0.1)
EVENT_BATCH = 500


@dataclass(frozen=True)
class ArmTruth:
    """What customers in one variant really do (the simulator's ground truth)."""

    accept: float  # probability of accepting the offer
    csat: tuple[float, ...] = (0.02, 0.04, 0.12, 0.37, 0.45)  # P(rating = 1..5)
    pushy: float = 0.15  # probability the customer says the offer felt pushy
    returns: float = 0.08  # probability an accepted item is sent back
    abandon: float = 0.10  # probability of abandoning a cart after the offer
    order_value: float = 60.0  # mean value of a cross-sell order


@dataclass(frozen=True)
class Scenario:
    """One experiment, its true effects and how much traffic reaches it."""

    experiment: dict  # staff API body for POST /api/v1/experiments
    arms: dict[str, ArmTruth]
    anchor_skus: tuple[str, ...]  # what customers bought / carry when the moment happens
    days: int = 28  # how long ago the experiment started
    customers_per_day: int = 100
    segment_effect: dict[str, float] = field(
        default_factory=lambda: {"new": 0.8, "returning": 1.0, "vip": 1.4}
    )
    novelty: float = 0.5  # extra relative effect in week 1, fading to 0 by week 3
    survey_response: float = 0.35  # share of surveyed customers who answer

    @property
    def key(self) -> str:
        return self.experiment["key"]


@dataclass(order=True)
class _Due:
    at: datetime
    seq: int
    action: Callable[[], None] = field(compare=False)


class Storefront:
    """An in-process HTTP client with a storefront API key and a staff user."""

    def __init__(self, *, name: str = "simulator") -> None:
        self.api_key_obj, key = APIKey.objects.create_key(name=name)
        host = next((h for h in settings.ALLOWED_HOSTS if h not in ("*", "")), "localhost")
        self._kw = {"format": "json", "secure": True, "HTTP_HOST": host.lstrip(".")}
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        self.public = APIClient()
        user, _ = get_user_model().objects.get_or_create(
            username="offerlab-simulator", defaults={"is_staff": True, "is_active": False}
        )
        self.staff = APIClient()
        self.staff.force_authenticate(user=user)
        self.staff_user = user

    def close(self) -> None:
        """Revoke the key: the simulator's storefront is gone."""
        self.api_key_obj.revoked = True
        self.api_key_obj.save(update_fields=["revoked"])

    def _call(self, client: APIClient, method: str, path: str, body=None, ok=(200, 201, 202)):
        response = getattr(client, method)(path, body, **self._kw)
        if response.status_code not in ok:
            raise SimulationError(
                f"{method.upper()} {path} → {response.status_code}: "
                f"{getattr(response, 'data', response.content)!r}"
            )
        return response

    def post(self, path: str, body: dict, ok=(200, 201, 202)):
        return self._call(self.client, "post", path, body, ok)

    def staff_post(self, path: str, body: dict | None = None, ok=(200, 201, 202)):
        return self._call(self.staff, "post", path, body, ok)

    def public_get(self, path: str):
        return self._call(self.public, "get", path)

    def public_post(self, path: str, body: dict, ok=(200, 201)):
        return self._call(self.public, "post", path, body, ok)


def progress_bar(total: int, desc: str) -> tqdm:
    """A terminal progress bar that redraws while time-machine has frozen the clock.

    tqdm decides when to redraw (and computes its rate) from the clock, which the simulation
    freezes at simulated times; so redraw by count instead and leave out rate and time left.
    """
    return tqdm(
        total=total,
        desc=desc,
        mininterval=0,
        miniters=max(1, total // 200),
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} customers",
    )


class SimulationError(RuntimeError):
    """The service refused something a well-behaved storefront sends."""


@dataclass
class Tally:
    customers: int = 0
    offers: int = 0
    offers_in_experiment: int = 0
    no_offer: dict = field(default_factory=dict)
    events: int = 0
    survey_answers: int = 0


class TrafficSimulator:
    """Runs scenarios day by day through the real API; `progress(n)` is told of each customer."""

    def __init__(self, storefront: Storefront, *, seed: int = 7, now: datetime | None = None):
        self.api = storefront
        self.rng = np.random.default_rng(seed)
        # Survey answers draw from their own stream: whether an offer carries a survey depends on
        # its random offer id, and must not shift the draws of everything else.
        self.survey_rng = np.random.default_rng([seed, 1])
        self.now = now or timezone.now()
        self._due: list[_Due] = []
        self._seq = itertools.count()
        self._events: list[dict] = []
        self.tally = Tally()

    # --- scheduling -------------------------------------------------------------------------
    def _at(self, when: datetime, action: Callable[[], None]) -> None:
        heapq.heappush(self._due, _Due(when, next(self._seq), action))

    def _event(self, when: datetime, **fields) -> None:
        event = {
            "event_id": str(uuid.UUID(bytes=self.rng.bytes(16), version=4)),
            "occurred_at": when.isoformat(),
            **fields,
        }
        self._at(when, lambda: self._events.append(event))

    def _flush_events(self) -> None:
        while self._events:
            batch, self._events = self._events[:EVENT_BATCH], self._events[EVENT_BATCH:]
            body = self.api.post("/api/v1/events", {"events": batch}).data
            if body.get("rejected"):
                raise SimulationError(f"events rejected: {body['rejected'][:3]!r}")
            self.tally.events += body.get("accepted", 0)

    def _run_due(self, until: datetime, traveller) -> None:
        """Do everything due by `until`, in time order; post events in batches as they fill."""
        while self._due and self._due[0].at <= until:
            item = heapq.heappop(self._due)
            traveller.move_to(max(item.at, timezone.now()))
            item.action()
            if len(self._events) >= EVENT_BATCH:
                self._flush_events()
        traveller.move_to(max(until, timezone.now()))

    # --- the generative model ----------------------------------------------------------------
    def _effect_multiplier(self, scenario: Scenario, segment: str, day: int) -> float:
        week = day // 7
        novelty = scenario.novelty * max(0.0, 1 - week / 2)
        return scenario.segment_effect.get(segment, 1.0) * (1 + novelty)

    def _customer(self, scenario: Scenario, index: int, arrive: datetime, day: int) -> None:
        rng = self.rng
        customer = f"{scenario.key}-c{index:06d}"
        segment = SEGMENTS[rng.choice(3, p=SEGMENT_SHARES)]
        anchor = scenario.anchor_skus[rng.integers(len(scenario.anchor_skus))]
        country = COUNTRIES[rng.choice(len(COUNTRIES), p=COUNTRY_SHARES)]
        self.tally.customers += 1
        # Purchase history: some customers ordered in the two weeks before (CUPED covariate).
        if rng.random() < 0.5:
            past = arrive - timedelta(days=float(rng.uniform(1, 13)))
            self._order(customer, past, [(anchor, "history", float(rng.gamma(4, 12)))])
        trigger = scenario.experiment["trigger"]
        if trigger == "post_purchase":
            self._order(customer, arrive, [(anchor, "anchor", float(rng.gamma(5, 20)))])
        elif trigger == "cart_abandonment":
            self._event(
                arrive,
                type="cart_abandoned",
                customer_id=customer,
                currency="EUR",
                items=[{"sku": anchor, "category": "anchor", "quantity": 1, "price": "49.00"}],
            )
        ask_at = arrive + timedelta(minutes=float(rng.uniform(1, 30)))
        attributes = {"segment": segment, "country": country}
        self._at(
            ask_at, lambda: self._ask_offer(scenario, customer, attributes, anchor, arrive, day)
        )

    def _order(self, customer: str, when: datetime, lines: list[tuple[str, str, float]]) -> None:
        amount = sum(price for _, _, price in lines)
        self._event(
            when,
            type="order_placed",
            customer_id=customer,
            order_id=f"o-{uuid.UUID(bytes=self.rng.bytes(16), version=4).hex[:16]}",
            amount=f"{amount:.2f}",
            currency="EUR",
            items=[
                {"sku": sku, "category": cat, "quantity": 1, "price": f"{price:.2f}"}
                for sku, cat, price in lines
            ],
        )

    def _ask_offer(self, scenario, customer, attributes, anchor, moment: datetime, day) -> None:
        segment = attributes["segment"]
        body = {
            "customer_id": customer,
            "trigger": scenario.experiment["trigger"],
            "context": {"skus": [anchor], "occurred_at": moment.isoformat()},
            "attributes": attributes,
        }
        offer = self.api.post("/api/v1/offers", body).data
        if offer.get("offer") is None and "offer_id" not in offer:
            reason = offer.get("reason", "unknown")
            self.tally.no_offer[reason] = self.tally.no_offer.get(reason, 0) + 1
            return
        self.tally.offers += 1
        variant = offer.get("variant")
        arm = scenario.arms.get(variant) if variant else None
        if arm is None:
            return
        self.tally.offers_in_experiment += 1
        self._outcomes(scenario, arm, customer, segment, offer, day)

    def _outcomes(self, scenario, arm: ArmTruth, customer, segment, offer, day) -> None:
        rng = self.rng
        control = scenario.arms[_control(scenario)]
        lift = (arm.accept - control.accept) * self._effect_multiplier(scenario, segment, day)
        p_accept = min(max(control.accept + lift, 0.0), 1.0)
        shown = datetime.fromisoformat(offer["send_at"].replace("Z", "+00:00"))
        offer_id = offer["offer_id"]
        products = offer.get("products") or []
        self._event(shown, type="offer_shown", customer_id=customer, offer_id=offer_id)
        accepted = rng.random() < p_accept
        if accepted and products:
            product = products[0]
            when = shown + timedelta(hours=float(rng.exponential(10)))
            self._event(when, type="offer_accepted", customer_id=customer, offer_id=offer_id)
            value = float(rng.gamma(6, arm.order_value / 6))
            self._order(
                customer,
                when + timedelta(minutes=5),
                [(product["sku"], product.get("category", ""), value)],
            )
            if rng.random() < arm.returns:
                back = when + timedelta(days=float(rng.uniform(2, 10)))
                self._event(
                    back,
                    type="order_returned",
                    customer_id=customer,
                    amount=f"{value:.2f}",
                    currency="EUR",
                    items=[
                        {
                            "sku": product["sku"],
                            "category": product.get("category", ""),
                            "quantity": 1,
                            "price": f"{value:.2f}",
                        }
                    ],
                )
        elif rng.random() < 0.25:
            # A later ordinary order: time to secondary purchase without the offer.
            when = shown + timedelta(days=float(rng.exponential(12)))
            self._order(customer, when, [("gift-card", "gift", float(rng.gamma(3, 15)))])
        if rng.random() < arm.abandon:
            when = shown + timedelta(hours=float(rng.uniform(1, 72)))
            self._event(
                when,
                type="cart_abandoned",
                customer_id=customer,
                currency="EUR",
                items=[{"sku": "gift-card", "category": "gift", "quantity": 1, "price": "25.00"}],
            )
        survey = offer.get("survey")
        if survey and self.survey_rng.random() < scenario.survey_response:
            answer_at = shown + timedelta(hours=float(self.survey_rng.uniform(0.2, 30)))
            self._at(answer_at, lambda: self._answer_survey(survey["token"], arm))

    def _answer_survey(self, token: str, arm: ArmTruth) -> None:
        survey = self.api.public_get(f"/api/v1/feedback/surveys/{token}").data
        answers = {}
        for question in survey.get("questions", []):
            kind, key = question["type"], question["key"]
            if kind == "rating":
                if "push" in key or "intrus" in key:
                    answers[key] = int(1 + self.survey_rng.binomial(4, arm.pushy))
                else:
                    answers[key] = int(
                        1 + self.survey_rng.choice(5, p=np.array(arm.csat) / sum(arm.csat))
                    )
            elif kind == "yes_no":
                answers[key] = bool(self.survey_rng.random() < arm.pushy)
            elif kind == "single_choice" and question.get("choices"):
                answers[key] = question["choices"][
                    self.survey_rng.integers(len(question["choices"]))
                ]
        if not answers:
            return
        self.api.public_post(
            "/api/v1/feedback/responses", {"token": token, "answers": answers, "complete": True}
        )
        self.tally.survey_answers += 1

    # --- driving -------------------------------------------------------------------------------
    def arrivals(self, scenario: Scenario) -> Iterator[tuple[int, datetime, int]]:
        """(customer index, arrival time, day) for the scenario's whole run, in time order."""
        start = self.now - timedelta(days=scenario.days)
        index = 0
        for day in range(scenario.days):
            n = int(self.rng.poisson(scenario.customers_per_day))
            offsets = np.sort(self.rng.uniform(0, 86400, size=n))
            for offset in offsets:
                when = start + timedelta(days=day, seconds=float(offset))
                if when >= self.now - timedelta(hours=1):
                    continue
                yield index, when, day
                index += 1

    def _tagged_arrivals(self, i: int, scenario: Scenario) -> Iterator[tuple]:
        for index, when, day in self.arrivals(scenario):
            yield when, i, index, day

    def create_experiment(self, scenario: Scenario) -> None:
        start = self.now - timedelta(days=scenario.days, minutes=5)
        with time_machine.travel(start, tick=False):
            self.api.staff_post("/api/v1/experiments", scenario.experiment, ok=(201,))
            self.api.staff_post(f"/api/v1/experiments/{scenario.key}/start")

    def run(self, scenarios: list[Scenario], progress: Callable[[int], None] = lambda n: None):
        """Simulate all scenarios interleaved in time; returns the tally."""
        arrivals = heapq.merge(*[self._tagged_arrivals(i, s) for i, s in enumerate(scenarios)])
        start = min(self.now - timedelta(days=s.days) for s in scenarios)
        with time_machine.travel(start, tick=False) as traveller:
            last_day = None
            for when, i, index, day in arrivals:
                self._run_due(when, traveller)
                if when.date() != last_day:
                    self._flush_events()  # a storefront sends at least daily
                    last_day = when.date()
                self._customer(scenarios[i], index, when, day)
                progress(1)
            self._run_due(self.now, traveller)
            self._flush_events()
        return self.tally


def _control(scenario: Scenario) -> str:
    return next(v["key"] for v in scenario.experiment["variants"] if v.get("is_control"))


def expected_customers(scenarios: list[Scenario]) -> int:
    return sum(s.days * s.customers_per_day for s in scenarios)
