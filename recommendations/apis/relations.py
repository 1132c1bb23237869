"""Staff API: the relation review queue (list, curate, approve / reject / pin)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config import fields
from config.exceptions import NotFound
from recommendations.models import ProductRelation, RelationKind, RelationOrigin, RelationStatus
from recommendations.selectors import relation_list
from recommendations.services import relation_create_curated, relation_review


class RelationOutputSerializer(serializers.ModelSerializer):
    source = serializers.CharField(source="source.sku")
    target = serializers.CharField(source="target.sku")

    class Meta:
        model = ProductRelation
        fields = [
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
            "score",
            "pair_count",
            "sample_orders",
        ]


class RelationListCreateApi(APIView):
    @extend_schema_serializer(component_name="RelationListCreateFilter")
    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=RelationStatus.choices, required=False)
        source = serializers.CharField(max_length=100, required=False)
        kind = serializers.ChoiceField(choices=RelationKind.choices, required=False)
        origin = serializers.ChoiceField(choices=RelationOrigin.choices, required=False)
        limit = serializers.IntegerField(min_value=1, max_value=1000, default=500)
        offset = serializers.IntegerField(min_value=0, max_value=2**62, default=0)

    @extend_schema_serializer(component_name="RelationListCreateInput")
    class InputSerializer(serializers.Serializer):
        source = fields.CharField(max_length=100)
        target = fields.CharField(max_length=100)
        kind = serializers.ChoiceField(choices=RelationKind.choices)
        pinned = fields.BooleanField(default=False)

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: RelationOutputSerializer(many=True)},
    )
    def get(self, request):
        # A plain dict: DRF reads a QueryDict as a form and would drop `status=` silently.
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        data = dict(filters.validated_data)
        limit, offset = data.pop("limit"), data.pop("offset")
        relations = relation_list(**data)[offset : offset + limit]
        return Response(RelationOutputSerializer(relations, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: RelationOutputSerializer})
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        relation, created = relation_create_curated(actor=request.user, **serializer.validated_data)
        return Response(
            RelationOutputSerializer(relation).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class RelationDetailApi(APIView):
    @extend_schema_serializer(component_name="RelationDetailInput")
    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=RelationStatus.choices, required=False)
        pinned = fields.BooleanField(required=False)

        def validate(self, attrs):
            if not attrs:
                raise serializers.ValidationError("Send status and/or pinned.")
            return attrs

    @extend_schema(
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH)],
        request=InputSerializer,
        responses={200: RelationOutputSerializer},
    )
    def patch(self, request, id: int):  # the path names it {id}, as in DESIGN.md
        in_range = 0 < id < 2**63  # beyond bigint the database would refuse the query
        relation = ProductRelation.objects.filter(pk=id).first() if in_range else None
        if relation is None:
            raise NotFound(f"No relation with id {id}.", field="id")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        relation = relation_review(
            relation=relation, actor=request.user, **serializer.validated_data
        )
        relation = relation_list().get(pk=relation.pk)
        return Response(RelationOutputSerializer(relation).data)
