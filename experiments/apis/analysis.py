"""Staff API: queue an analysis, follow its progress, read the latest results."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.exceptions import NotFound
from experiments.analysis import analysis_request
from experiments.models import AnalysisRun, Experiment
from experiments.selectors import experiment_get, latest_analysis


def _experiment(key: str) -> Experiment:
    experiment = experiment_get(key)
    if experiment is None:
        raise NotFound(f"No experiment with key '{key}'.")
    return experiment


class AnalysisJobSerializer(serializers.ModelSerializer):
    job_id = serializers.IntegerField(source="id")
    experiment = serializers.CharField(source="experiment.key")

    class Meta:
        model = AnalysisRun
        fields = [
            "job_id",
            "experiment",
            "status",
            "progress",
            "progress_message",
            "created_at",
            "started_at",
            "finished_at",
            "window_start",
            "window_end",
            "error",
        ]


class AnalysisRequestApi(APIView):
    """POST /api/v1/experiments/{key}/analyze — queue an analysis (or return the active one)."""

    OutputSerializer = AnalysisJobSerializer

    @extend_schema(request=None, responses={202: AnalysisJobSerializer})
    def post(self, request, key: str):
        run = analysis_request(experiment=_experiment(key), requested_by=request.user)
        run.refresh_from_db()
        return Response(self.OutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class AnalysisJobApi(APIView):
    """GET /api/v1/experiments/{key}/analyses/{job_id} — a job's status and progress."""

    OutputSerializer = AnalysisJobSerializer

    @extend_schema(responses={200: AnalysisJobSerializer})
    def get(self, request, key: str, job_id: int):
        run = (
            AnalysisRun.objects.select_related("experiment")
            .filter(experiment__key=key, pk=job_id)
            .first()
        )
        if run is None:
            raise NotFound(f"No analysis job {job_id} for experiment '{key}'.")
        return Response(self.OutputSerializer(run).data)


class AnalysisResultsApi(APIView):
    """GET /api/v1/experiments/{key}/results — the latest successful analysis (DESIGN JSON)."""

    @extend_schema(
        responses={
            200: OpenApiResponse(description="The analysis JSON of DESIGN.md."),
            404: OpenApiResponse(description="Unknown experiment, or never analysed."),
        }
    )
    def get(self, request, key: str):
        experiment = _experiment(key)
        run = latest_analysis(experiment)
        if run is None:
            raise NotFound(
                f"Experiment '{key}' has not been analysed yet: "
                f"POST /api/v1/experiments/{key}/analyze first.",
                extra={"experiment": key, "analysed": False},
            )
        return Response(run.result)
