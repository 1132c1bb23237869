"""Staff API: the scale-readiness report of an experiment's latest analysis."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.exceptions import NotFound
from experiments.readiness import CRITERIA, DO_NOT_SCALE, KEEP_TESTING, READY
from experiments.report import NeverAnalysed, how_to_analyse, report_for
from experiments.selectors import experiment_get


class ReadinessCriterionSerializer(serializers.Serializer):
    key = serializers.ChoiceField(choices=CRITERIA)
    status = serializers.ChoiceField(choices=["pass", "fail", "pending"])
    detail = serializers.CharField(help_text="One sentence of evidence in plain words.")


class ExperimentReadinessApi(APIView):
    """GET /api/v1/experiments/{key}/readiness — verdict, criteria and next step (DESIGN.md)."""

    class OutputSerializer(serializers.Serializer):
        experiment = serializers.CharField()
        verdict = serializers.ChoiceField(choices=[READY, KEEP_TESTING, DO_NOT_SCALE])
        recommended_variant = serializers.CharField(
            allow_null=True, help_text="The best significant winner, or the control."
        )
        criteria = ReadinessCriterionSerializer(many=True)
        next_step = serializers.CharField()
        generated_at = serializers.CharField()

    @extend_schema(
        responses={
            200: OutputSerializer,
            404: OpenApiResponse(
                response=inline_serializer(
                    "ReadinessNotFound",
                    {
                        "detail": serializers.CharField(),
                        # Only when the experiment exists but was never analysed.
                        "how_to_run": serializers.CharField(required=False),
                    },
                ),
                description="Unknown experiment, or never analysed (the body says how to run "
                "an analysis).",
            ),
        }
    )
    def get(self, request, key: str):
        experiment = experiment_get(key)
        if experiment is None:
            raise NotFound(f"No experiment with key '{key}'.")
        try:
            report = report_for(experiment)
        except NeverAnalysed:
            raise NotFound(
                how_to_analyse(key),
                extra={"how_to_run": f"POST /api/v1/experiments/{key}/analyze"},
            ) from None
        return Response(self.OutputSerializer(report.readiness).data)
