"""Thin Celery tasks: load ids, call one service, own the retries."""

from celery import Task, shared_task

from experiments.analysis import TRANSIENT_ERRORS, analysis_fail, analysis_request, analysis_run
from experiments.dispatch import analysis_claim
from experiments.models import AnalysisRun, Experiment, Status


class AnalysisTask(Task):
    """Marks the run failed when the task gives up (retries exhausted, time limit, crash)."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        run_id = args[0] if args else (kwargs or {}).get("run_id")
        if run_id is not None:
            analysis_fail(run_id=run_id, error=f"{type(exc).__name__}: {exc}")


@shared_task(
    bind=True,
    base=AnalysisTask,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
    acks_late=True,
)
def analyze_experiment(self, run_id: int) -> str | None:
    """Compute AnalysisRun ``run_id``; returns its final status (None if it no longer exists)."""
    run = AnalysisRun.objects.select_related("experiment").filter(pk=run_id).first()
    if run is None:
        return None
    with analysis_claim(run_id):  # a duplicate delivery waits, then finds the run finished
        return analysis_run(experiment=run.experiment, run=run, raise_transient=True).status


@shared_task(acks_late=True)
def analyze_running_experiments() -> int:
    """Beat: request an analysis of every running experiment (an active one is reused).

    Returns the number of experiments requested.
    """
    experiments = Experiment.objects.filter(status=Status.RUNNING).order_by("id")
    return sum(1 for experiment in experiments if analysis_request(experiment=experiment))
