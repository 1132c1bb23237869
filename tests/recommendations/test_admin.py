"""The admin review queue: figures, sorting by lift, decisions, and "Mine co-purchases now"."""

import time

import pytest
from django.urls import reverse
from django.utils import timezone

from recommendations.models import ProductRelation

from .conftest import make_product, order, relate

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:recommendations_productrelation_changelist")


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def queue(shop):
    ProductRelation.objects.filter(target__sku="lamp").update(
        lift=7.5,
        support=0.04,
        confidence=0.6,
        confidence_reverse=0.3,
        pair_count=12,
        sample_orders=["o-123", "o-456"],
    )
    ProductRelation.objects.filter(target__sku="stove").update(lift=2.0)


def test_queue_shows_the_figures_sorted_by_lift(admin_client, queue):
    page = admin_client.get(CHANGELIST).content.decode()
    assert page.index("tent → lamp") < page.index("tent → stove") < page.index("tent → stakes")
    for shown in ("7.50×", "4.0%", "60.0%", "30.0%", "o-123, o-456", "Mine co-purchases now"):
        assert shown in page


def test_actions_approve_reject_pin_and_unpin(admin_client, staff_user, queue):
    lamp = ProductRelation.objects.get(target__sku="lamp")
    stove = ProductRelation.objects.get(target__sku="stove")

    def act(action, *relations):
        return admin_client.post(
            CHANGELIST,
            {"action": action, "_selected_action": [r.pk for r in relations]},
            follow=True,
        )

    act("pin", lamp)
    lamp.refresh_from_db()
    assert (lamp.status, lamp.pinned, lamp.reviewed_by) == ("approved", True, staff_user)
    act("reject", lamp, stove)
    lamp.refresh_from_db()
    stove.refresh_from_db()
    assert (lamp.status, lamp.pinned, stove.status) == ("rejected", False, "rejected")
    page = act("pin", lamp).content.decode()
    assert "cannot be pinned" in page
    act("approve", lamp)
    act("pin", lamp)
    act("unpin", lamp)
    lamp.refresh_from_db()
    assert (lamp.status, lamp.pinned) == ("approved", False)


def test_adding_a_relation_in_admin_curates_it_approved(admin_client, shop):
    stakes = ProductRelation.objects.get(target__sku="stakes").target
    stove = ProductRelation.objects.get(target__sku="stove").target
    response = admin_client.post(
        reverse("admin:recommendations_productrelation_add"),
        {
            "source": stakes.pk,
            "target": stove.pk,
            "kind": "ecosystem",
            "status": "pending",
            "score": "1.0",
            "sample_orders": "[]",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    relation = ProductRelation.objects.get(source=stakes, target=stove)
    assert (relation.origin, relation.status) == ("curated", "approved")


def test_mine_button_queues_mining_and_candidates_appear(
    admin_client, db, django_capture_on_commit_callbacks
):
    for sku in ("x", "y"):
        make_product(sku)
    for i in range(6):
        order(f"c{i}", ["x", "y"])
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:recommendations_productrelation_mine"), follow=True
        )
    assert "Mining queued" in response.content.decode()
    assert ProductRelation.objects.filter(status="pending", origin="mined").count() == 2


def test_mine_button_refuses_get(admin_client, db):
    assert (
        admin_client.get(reverse("admin:recommendations_productrelation_mine")).status_code == 405
    )


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_mine_button_runs_on_a_real_worker(celery_worker_process, client, staff_user):
    client.force_login(staff_user)
    for sku in ("x", "y"):
        make_product(sku)
    for i in range(6):
        order(f"c{i}", ["x", "y"], at=timezone.now())
    relate("x", "y", "upgrade")  # a curated relation of another kind is left alone
    client.post(reverse("admin:recommendations_productrelation_mine"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if ProductRelation.objects.filter(origin="mined").count() == 2:
            break
        time.sleep(0.2)
    mined = ProductRelation.objects.filter(origin="mined")
    assert mined.count() == 2 and {r.status for r in mined} == {"pending"}
    assert ProductRelation.objects.get(kind="upgrade").status == "approved"
