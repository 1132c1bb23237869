"""GET /api/v1/products/{sku}/recommendations: approved relations only, read-only."""

import pytest

from recommendations.models import CustomerCap, Offer, Product, ProductRelation
from recommendations.selectors import invalidate_catalog

from .conftest import make_product, relate

pytestmark = pytest.mark.django_db


def recommend(client, sku="tent", **params):
    return client.get(f"/api/v1/products/{sku}/recommendations", params)


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("completion", ["stakes", "footprint"]),
        ("evolution", ["tent-pro"]),
        ("ecosystem", ["stove"]),
    ],
)
def test_each_strategy_returns_its_kind(storefront, shop, strategy, expected):
    response = recommend(storefront, strategy=strategy)
    assert response.status_code == 200
    products = response.json()["products"]
    assert [p["sku"] for p in products] == expected
    assert {p["strategy"] for p in products} == {strategy}


def test_without_strategy_every_kind_is_listed_with_its_strategy(storefront, shop):
    products = recommend(storefront).json()["products"]
    assert {p["sku"]: p["strategy"] for p in products} == {
        "stakes": "completion",
        "footprint": "completion",
        "stove": "ecosystem",
        "tent-pro": "evolution",
    }
    assert products[0] == {
        "sku": "stakes",
        "name": "Tent Stakes",
        "category": "accessories",
        "price": "12.50",
        "strategy": "completion",
        "score": 0.9,
    }


def test_pending_and_rejected_relations_are_never_served(storefront, shop):
    relate("tent", "footprint", "upgrade", status="rejected")
    skus = [p["sku"] for p in recommend(storefront).json()["products"]]
    assert "lamp" not in skus  # pending (mined, nobody approved it)
    assert [p["sku"] for p in recommend(storefront, strategy="evolution").json()["products"]] == [
        "tent-pro"
    ]


def test_pinned_relations_come_first_whatever_their_score(storefront, shop):
    ProductRelation.objects.filter(target__sku="footprint").update(pinned=True, score=0.01)
    invalidate_catalog()  # a bulk update sends no signal
    skus = [p["sku"] for p in recommend(storefront, strategy="completion").json()["products"]]
    assert skus == ["footprint", "stakes"]


def test_inactive_out_of_stock_and_free_products_are_excluded(storefront, shop):
    make_product("free", price=0)
    relate("tent", "free", "complement", score=5)
    for sku, field in (("stakes", "active"), ("footprint", "in_stock")):
        product = Product.objects.get(sku=sku)
        setattr(product, field, False)
        product.save()
    assert recommend(storefront, strategy="completion").json()["products"] == []


def test_a_new_approval_is_served_on_the_next_request(storefront, shop):
    assert "lamp" not in [p["sku"] for p in recommend(storefront).json()["products"]]
    relation = ProductRelation.objects.get(target__sku="lamp")
    relation.status = "approved"
    relation.save()
    assert "lamp" in [p["sku"] for p in recommend(storefront).json()["products"]]


def test_limit_caps_the_list(storefront, shop):
    assert len(recommend(storefront, limit=1).json()["products"]) == 1


@pytest.mark.parametrize("limit", ["0", "21", "-1", "many"])
def test_limit_outside_1_to_20_is_a_400_naming_limit(storefront, shop, limit):
    response = recommend(storefront, limit=limit)
    assert response.status_code == 400
    assert "limit" in response.json()


def test_unknown_strategy_is_a_400_naming_strategy(storefront, shop):
    response = recommend(storefront, strategy="upsell")
    assert response.status_code == 400
    assert "strategy" in response.json()


def test_unknown_sku_is_a_404(storefront, shop):
    response = recommend(storefront, sku="nope")
    assert response.status_code == 404
    assert "nope" in str(response.json())


def test_recommendations_have_no_side_effects(storefront, shop):
    for _ in range(5):
        assert recommend(storefront).status_code == 200
    assert not Offer.objects.exists()
    assert not CustomerCap.objects.exists()


def test_recommendations_need_an_api_key(anon, shop):
    assert recommend(anon).status_code in (401, 403)


def test_an_empty_strategy_is_a_400_naming_strategy(storefront, shop):
    response = storefront.get("/api/v1/products/tent/recommendations?strategy=")
    assert response.status_code == 400
    assert "strategy" in response.json()
