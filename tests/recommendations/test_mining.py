"""Co-purchase mining: planted associations are found, chance pairs are not, people win."""

import random
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from recommendations.mining import relations_mine
from recommendations.models import ProductRelation
from recommendations.tasks import mine_relations_task

from .conftest import make_product, order, relate

pytestmark = pytest.mark.django_db

FILLERS = [f"f{i:02d}" for i in range(30)]
# A filler pair shares ~1 basket of 400; at 10 the chance that any of 435 reaches it is ~1e-4.
MIN_SUPPORT = 10


@pytest.fixture
def baskets(db):
    """400 synthetic orders: tent+stakes planted together in ~25 %, a and b independent at
    50 % each, and two random fillers per basket. Returns the baskets as sets of skus."""
    rng = random.Random(42)
    for sku in ["tent", "stakes", "a", "b", *FILLERS]:
        make_product(sku)
    now = timezone.now()
    result = []
    for i in range(400):
        basket = set(rng.sample(FILLERS, 2))
        if rng.random() < 0.25:
            basket |= {"tent", "stakes"}
        elif rng.random() < 0.1:
            basket.add("tent")
        if rng.random() < 0.5:
            basket.add("a")
        if rng.random() < 0.5:
            basket.add("b")
        order(f"c{i}", sorted(basket), at=now - timedelta(hours=i), order_id=f"o{i:04d}")
        result.append(basket)
    return result


def rel(source, target):
    return ProductRelation.objects.get(source__sku=source, target__sku=target, kind="complement")


def test_planted_association_is_found_with_the_textbook_figures(baskets):
    result = relations_mine(min_support_count=MIN_SUPPORT)
    assert result.baskets == 400
    n = len(baskets)
    n_tent = sum("tent" in b for b in baskets)
    n_stakes = sum("stakes" in b for b in baskets)
    n_both = sum({"tent", "stakes"} <= b for b in baskets)
    forward = rel("tent", "stakes")
    assert forward.origin == "mined" and forward.status == "pending"
    assert forward.pair_count == n_both
    assert forward.support == pytest.approx(n_both / n)
    assert forward.confidence == pytest.approx(n_both / n_tent)
    assert forward.confidence_reverse == pytest.approx(n_both / n_stakes)
    assert forward.lift == pytest.approx(n_both * n / (n_tent * n_stakes))
    assert forward.lift > 3
    backward = rel("stakes", "tent")
    assert backward.confidence == pytest.approx(forward.confidence_reverse)
    assert backward.lift == pytest.approx(forward.lift)
    assert len(forward.sample_orders) == 2
    assert all(o.startswith("o") for o in forward.sample_orders)


def test_independent_products_get_a_lift_near_one_and_rare_pairs_none(baskets):
    relations_mine(min_support_count=MIN_SUPPORT)
    assert 0.75 < rel("a", "b").lift < 1.25
    assert rel("a", "b").lift < rel("tent", "stakes").lift / 3
    filler_pairs = ProductRelation.objects.filter(source__sku__in=FILLERS, target__sku__in=FILLERS)
    assert not filler_pairs.exists()  # ~1 basket per filler pair: below minimum support


def test_queue_is_sorted_by_lift(baskets, staff):
    relations_mine(min_support_count=MIN_SUPPORT)
    lifts = [r["lift"] for r in staff.get("/api/v1/relations", {"status": "pending"}).json()]
    assert lifts == sorted(lifts, reverse=True)
    assert lifts[0] == pytest.approx(rel("tent", "stakes").lift)


def test_remining_refreshes_figures_but_never_undoes_a_decision(baskets):
    relations_mine(min_support_count=MIN_SUPPORT)
    approved, blocked = rel("tent", "stakes"), rel("a", "b")
    approved.status, approved.pinned = "approved", True
    approved.save()
    blocked.status, blocked.reviewed_at = "rejected", timezone.now()
    blocked.save()
    order("late", ["tent", "stakes"], order_id="o-late")
    relations_mine(min_support_count=MIN_SUPPORT)
    approved.refresh_from_db()
    blocked.refresh_from_db()
    assert (approved.status, approved.pinned) == ("approved", True)
    assert blocked.status == "rejected"
    assert approved.pair_count == sum({"tent", "stakes"} <= b for b in baskets) + 1


def test_candidates_that_fall_below_the_thresholds_leave_the_queue(baskets):
    relations_mine(min_support_count=MIN_SUPPORT)
    assert ProductRelation.objects.filter(source__sku="a", target__sku="b").exists()
    relations_mine(min_support_count=150)
    assert not ProductRelation.objects.filter(source__sku="a", target__sku="b").exists()
    assert ProductRelation.objects.filter(source__sku="tent", target__sku="stakes").exists() == (
        sum({"tent", "stakes"} <= b for b in baskets) >= 150
    )


def test_oversized_baskets_and_orders_outside_the_window_are_left_out(db):
    for sku in ("x", "y", *FILLERS):
        make_product(sku)
    now = timezone.now()
    for i in range(6):
        order(f"old{i}", ["x", "y"], at=now - timedelta(days=100))
        order(f"bulk{i}", ["x", "y", *FILLERS])
    result = relations_mine(min_support_count=5, window_days=90, max_basket=30)
    assert result.baskets == 0
    assert not ProductRelation.objects.exists()
    result = relations_mine(min_support_count=5, window_days=120, max_basket=30)
    assert result.baskets == 6 and rel("x", "y").pair_count == 6


def test_curated_relation_keeps_its_score_when_mining_finds_the_pair(baskets):
    curated = relate("tent", "stakes", "complement", score=1.0)
    relations_mine(min_support_count=MIN_SUPPORT)
    curated.refresh_from_db()
    assert curated.origin == "curated" and curated.score == 1.0 and curated.status == "approved"
    assert curated.lift > 3


def test_mine_relations_command_reports_what_it_wrote(baskets):
    out = StringIO()
    call_command(
        "mine_relations", "--min-support-count", str(MIN_SUPPORT), stdout=out, stderr=StringIO()
    )
    text = out.getvalue()
    assert "400 order(s)" in text and "pending review" in text
    assert ProductRelation.objects.filter(status="pending").exists()


def test_mining_task_runs_the_service(baskets, settings):
    settings.OFFERLAB_MINING_MIN_SUPPORT_COUNT = MIN_SUPPORT
    summary = mine_relations_task.delay().get()
    assert summary["baskets"] == 400 and summary["created"] > 0
    assert rel("tent", "stakes").lift > 3
