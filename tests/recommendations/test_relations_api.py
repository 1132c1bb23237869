"""The review queue as a staff API: list, curate, approve / reject / pin."""

import pytest

from recommendations.models import ProductRelation

from .conftest import relate

pytestmark = pytest.mark.django_db

URL = "/api/v1/relations"

FIELDS = {
    "id",
    "source",
    "target",
    "kind",
    "origin",
    "status",
    "pinned",
    "support",
    "confidence",
    "confidence_reverse",
    "lift",
}


def test_list_filters_by_status_and_source_and_names_products_by_sku(staff, shop):
    body = staff.get(URL, {"status": "pending"}).json()
    assert len(body) == 1
    assert set(body[0]) >= FIELDS
    assert (body[0]["source"], body[0]["target"], body[0]["origin"]) == ("tent", "lamp", "mined")
    assert len(staff.get(URL, {"source": "tent"}).json()) == 5
    assert staff.get(URL, {"source": "stakes"}).json() == []


def test_list_is_sorted_by_lift(staff, shop):
    ProductRelation.objects.filter(target__sku="stove").update(lift=2.0)
    ProductRelation.objects.filter(target__sku="lamp").update(lift=9.0)
    targets = [r["target"] for r in staff.get(URL).json()]
    assert targets[:2] == ["lamp", "stove"]


def test_curated_relation_is_approved_at_once(staff, shop):
    response = staff.post(
        URL, {"source": "stakes", "target": "footprint", "kind": "complement"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["origin"], body["status"], body["pinned"]) == ("curated", "approved", False)


def test_curating_an_existing_mined_candidate_approves_it(staff, shop):
    response = staff.post(
        URL,
        {"source": "tent", "target": "lamp", "kind": "complement", "pinned": True},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["origin"], body["status"], body["pinned"]) == ("mined", "approved", True)
    assert ProductRelation.objects.filter(target__sku="lamp").count() == 1


@pytest.mark.parametrize(
    ("payload", "field", "status"),
    [
        ({"source": "nope", "target": "lamp", "kind": "complement"}, "source", 404),
        ({"source": "tent", "target": "nope", "kind": "complement"}, "target", 404),
        ({"source": "tent", "target": "tent", "kind": "complement"}, "target", 400),
        ({"source": "tent", "target": "lamp", "kind": "cousin"}, "kind", 400),
        ({"target": "lamp", "kind": "complement"}, "source", 400),
    ],
)
def test_bad_curation_is_refused_naming_the_field(staff, shop, payload, field, status):
    response = staff.post(URL, payload, format="json")
    assert response.status_code == status
    assert field in response.json()


def test_patch_approves_pins_and_blocks(staff, staff_user, shop):
    relation = ProductRelation.objects.get(target__sku="lamp")
    url = f"{URL}/{relation.pk}"
    approved = staff.patch(url, {"status": "approved"}, format="json").json()
    assert approved["status"] == "approved"
    relation.refresh_from_db()
    assert relation.reviewed_by == staff_user and relation.reviewed_at is not None

    pinned = staff.patch(url, {"pinned": True}, format="json").json()
    assert pinned["pinned"] is True

    blocked = staff.patch(url, {"status": "rejected"}, format="json").json()
    assert (blocked["status"], blocked["pinned"]) == ("rejected", False)


def test_pinning_a_pending_candidate_approves_it(staff, shop):
    relation = ProductRelation.objects.get(target__sku="lamp")
    body = staff.patch(f"{URL}/{relation.pk}", {"pinned": True}, format="json").json()
    assert (body["status"], body["pinned"]) == ("approved", True)


def test_a_rejected_relation_cannot_be_pinned(staff, shop):
    relation = relate("stakes", "lamp", "complement", status="rejected")
    response = staff.patch(f"{URL}/{relation.pk}", {"pinned": True}, format="json")
    assert response.status_code == 400 and "pinned" in response.json()


@pytest.mark.parametrize(
    ("payload", "field"), [({"status": "maybe"}, "status"), ({}, "non_field_errors")]
)
def test_bad_patch_is_a_400(staff, shop, payload, field):
    relation = ProductRelation.objects.get(target__sku="lamp")
    response = staff.patch(f"{URL}/{relation.pk}", payload, format="json")
    assert response.status_code == 400 and field in response.json()


def test_unknown_relation_is_a_404(staff, shop):
    assert staff.patch(f"{URL}/999999", {"status": "approved"}, format="json").status_code == 404


def test_bad_status_filter_is_a_400(staff, shop):
    response = staff.get(URL, {"status": "maybe"})
    assert response.status_code == 400 and "status" in response.json()


def test_relations_api_is_staff_only(storefront, anon, shop):
    assert storefront.get(URL).status_code in (401, 403)
    assert anon.get(URL).status_code in (401, 403)


def test_an_id_beyond_any_row_is_a_404_not_a_database_error(staff, shop):
    response = staff.patch(f"{URL}/{10**30}", {"status": "approved"}, format="json")
    assert response.status_code == 404


@pytest.mark.parametrize("name", ["status", "source", "kind", "origin", "limit"])
def test_an_empty_filter_is_a_400_not_ignored(staff, shop, name):
    response = staff.get(f"{URL}?{name}=")
    assert response.status_code == 400 and name in response.json()


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"source": 5}, "source"), ({"pinned": "true"}, "pinned"), ({"target": None}, "target")],
)
def test_a_curated_relation_of_the_wrong_json_type_is_400(staff, shop, payload, field):
    body = {"source": "tent", "target": "lamp", "kind": "complement", **payload}
    response = staff.post(URL, body, format="json")
    assert response.status_code == 400 and field in response.json()


def test_a_review_with_a_string_for_pinned_is_400(staff, shop):
    relation = ProductRelation.objects.get(target__sku="lamp")
    response = staff.patch(f"{URL}/{relation.pk}", {"pinned": "yes"}, format="json")
    assert response.status_code == 400 and "pinned" in response.json()
