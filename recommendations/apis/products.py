"""Storefront API: catalogue upsert and read-only recommendations for a product."""

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.exceptions import NotFound
from experiments.apikeys import StorefrontApiMixin
from experiments.models import Strategy
from recommendations.selectors import STRATEGY_ORDER, catalog, rank_recommendations
from recommendations.services import MAX_PRODUCTS_PER_BATCH, products_upsert


class RecommendedProductSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    price = serializers.CharField(help_text='Decimal as a string, e.g. "19.90".')
    strategy = serializers.ChoiceField(choices=Strategy.choices)
    score = serializers.FloatField()


class ProductRowSerializer(serializers.Serializer):
    """A catalogue row as documented in the schema (validated by the service)."""

    sku = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=255)
    category = serializers.CharField(max_length=100)
    price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    active = serializers.BooleanField(required=False, default=True)
    in_stock = serializers.BooleanField(required=False, default=True)


class ProductUpsertApi(StorefrontApiMixin, APIView):
    """Bulk upsert by sku; each invalid row is reported, the valid ones are saved."""

    @extend_schema_serializer(component_name="ProductUpsertInput")
    class InputSerializer(serializers.Serializer):
        # Rows are validated one by one by the service, so one bad row never sinks the batch.
        products = serializers.ListField(
            child=serializers.JSONField(), max_length=MAX_PRODUCTS_PER_BATCH, allow_empty=True
        )

    @extend_schema_serializer(component_name="ProductUpsertOutput")
    class OutputSerializer(serializers.Serializer):
        @extend_schema_serializer(component_name="ProductUpsertRejected")
        class RejectedSerializer(serializers.Serializer):
            index = serializers.IntegerField()
            errors = serializers.DictField()

        created = serializers.IntegerField()
        updated = serializers.IntegerField()
        rejected = RejectedSerializer(many=True)

    @extend_schema_serializer(component_name="ProductUpsertDocumentedInput")
    class DocumentedInput(serializers.Serializer):
        products = serializers.ListField(
            child=ProductRowSerializer(), max_length=MAX_PRODUCTS_PER_BATCH
        )

    @extend_schema(request=DocumentedInput, responses={200: OutputSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = products_upsert(rows=serializer.validated_data["products"])
        return Response(
            self.OutputSerializer(
                {"created": result.created, "updated": result.updated, "rejected": result.rejected}
            ).data
        )


class ProductRecommendationsApi(StorefrontApiMixin, APIView):
    """Approved relations of one product; read-only (no exposure, no frequency-cap use)."""

    @extend_schema_serializer(component_name="ProductRecommendationsInput")
    class InputSerializer(serializers.Serializer):
        strategy = serializers.ChoiceField(
            choices=Strategy.choices, required=False, help_text="Default: every strategy."
        )
        limit = serializers.IntegerField(min_value=1, max_value=20, default=10)

    @extend_schema_serializer(component_name="ProductRecommendationsOutput")
    class OutputSerializer(serializers.Serializer):
        sku = serializers.CharField()
        strategy = serializers.CharField(allow_null=True)
        products = RecommendedProductSerializer(many=True)

    @extend_schema(
        parameters=[InputSerializer],
        responses={200: OutputSerializer, 404: OpenApiResponse(description="Unknown sku")},
    )
    def get(self, request, sku: str):
        # A plain dict: DRF reads a QueryDict as a form and would drop `strategy=` silently.
        params = self.InputSerializer(data=request.query_params.dict())
        params.is_valid(raise_exception=True)
        strategy = params.validated_data.get("strategy")
        snapshot = catalog()
        if sku not in snapshot.categories:
            raise NotFound(f"No product with sku '{sku}'.", field="sku")
        products = rank_recommendations(
            sources=[sku],
            strategies=[strategy] if strategy else STRATEGY_ORDER,
            exclude=set(),
            limit=params.validated_data["limit"],
            snapshot=snapshot,
        )
        return Response(
            self.OutputSerializer(
                {"sku": sku, "strategy": strategy, "products": [p.as_dict() for p in products]}
            ).data
        )
