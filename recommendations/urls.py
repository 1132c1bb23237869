from django.urls import path

from recommendations.apis.offers import OfferCreateApi
from recommendations.apis.products import ProductRecommendationsApi, ProductUpsertApi
from recommendations.apis.relations import RelationDetailApi, RelationListCreateApi

urlpatterns = [
    path("products", ProductUpsertApi.as_view(), name="product-upsert"),
    path(
        "products/<path:sku>/recommendations",
        ProductRecommendationsApi.as_view(),
        name="product-recommendations",
    ),
    path("offers", OfferCreateApi.as_view(), name="offer-create"),
    path("relations", RelationListCreateApi.as_view(), name="relation-list"),
    path("relations/<int:id>", RelationDetailApi.as_view(), name="relation-detail"),
]
