from django.urls import path

from experiments.apis.analysis import AnalysisJobApi, AnalysisRequestApi, AnalysisResultsApi
from experiments.apis.assignments import AssignmentCreateApi
from experiments.apis.events import EventBatchCreateApi
from experiments.apis.experiments import (
    ExperimentDetailApi,
    ExperimentListCreateApi,
    ExperimentTransitionApi,
)
from experiments.apis.readiness import ExperimentReadinessApi

urlpatterns = [
    path("assignments", AssignmentCreateApi.as_view(), name="assignment-create"),
    path("events", EventBatchCreateApi.as_view(), name="event-batch-create"),
    path("experiments", ExperimentListCreateApi.as_view(), name="experiment-list"),
    path("experiments/<slug:key>", ExperimentDetailApi.as_view(), name="experiment-detail"),
    path(
        "experiments/<slug:key>/start",
        ExperimentTransitionApi.as_view(action="start"),
        name="experiment-start",
    ),
    path(
        "experiments/<slug:key>/pause",
        ExperimentTransitionApi.as_view(action="pause"),
        name="experiment-pause",
    ),
    path(
        "experiments/<slug:key>/stop",
        ExperimentTransitionApi.as_view(action="stop"),
        name="experiment-stop",
    ),
    path("experiments/<slug:key>/analyze", AnalysisRequestApi.as_view(), name="analysis-request"),
    path(
        "experiments/<slug:key>/analyses/<int:job_id>",
        AnalysisJobApi.as_view(),
        name="analysis-job",
    ),
    path("experiments/<slug:key>/results", AnalysisResultsApi.as_view(), name="analysis-results"),
    path(
        "experiments/<slug:key>/readiness",
        ExperimentReadinessApi.as_view(),
        name="experiment-readiness",
    ),
]
