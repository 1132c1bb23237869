"""Readiness report formats (text, JSON, standalone HTML), charts, the command and admin page."""

import json
import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from experiments import charts
from experiments.models import AnalysisRun, Status
from experiments.readiness import readiness_for_run
from experiments.report import context_for, render_html, render_json, render_text, report_for
from tests.experiments.readiness_results import healthy_result, not_enough
from tests.factories import ExperimentFactory, VariantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment():
    experiment = ExperimentFactory(
        key="pp-email-timing",
        name="Post-purchase email timing",
        status=Status.RUNNING,
        traffic_percent=10.0,
        started_at=timezone.now(),
    )
    VariantFactory(experiment=experiment, key="A", is_control=True, position=0)
    VariantFactory(
        experiment=experiment, key="B", position=1, timing={"delay_hours": 24, "window_hours": 48}
    )
    return experiment


def analysed(experiment, result=None, *, store_readiness=True):
    run = AnalysisRun.objects.create(
        experiment=experiment,
        status=AnalysisRun.RunStatus.SUCCEEDED,
        result=result or healthy_result(),
        finished_at=timezone.now(),
    )
    if store_readiness:
        run.readiness = readiness_for_run(run)
        run.save(update_fields=["readiness"])
    return run


# --- text ----------------------------------------------------------------------------------------


def test_text_report_leads_with_the_verdict_and_next_step(experiment):
    analysed(experiment)

    text = render_text(report_for(experiment))

    lines = text.splitlines()
    assert lines[0] == "Scale-readiness report: Post-purchase email timing (pp-email-timing)"
    assert "VERDICT: READY TO SCALE — recommended variant: B" in text
    assert "Next step: raise traffic from 10 % to 50 %" in text
    assert "Criteria (9 pass, 0 fail, 0 pending):" in text
    # One line per criterion with its status word, and the evidence in words.
    assert sum(1 for line in lines if re.match(r"  . PASS ", line)) == 9
    assert "B's acceptance rate is 11.8 % vs 9.6 % for A (+2.2 pts" in " ".join(text.split())
    assert all(len(line) <= 140 for line in lines)


def test_text_report_lists_metrics_with_control_marked(experiment):
    analysed(experiment)

    text = render_text(report_for(experiment))

    assert "acceptance rate" in text
    assert "A (ctl)" in text
    assert "+2.2 pts" in text
    assert "better" in text


# --- JSON ----------------------------------------------------------------------------------------


def test_json_report_is_the_stored_readiness(experiment):
    run = analysed(experiment)

    data = json.loads(render_json(report_for(experiment)))

    assert data == run.readiness
    assert data["verdict"] == "ready_to_scale"


def test_run_without_stored_readiness_is_judged_on_the_fly(experiment):
    analysed(experiment, store_readiness=False)

    data = json.loads(render_json(report_for(experiment)))

    assert data["verdict"] == "ready_to_scale"
    assert len(data["criteria"]) == 9


# --- HTML ----------------------------------------------------------------------------------------


def test_standalone_html_has_verdict_criteria_and_four_inline_charts_and_no_cdn(experiment):
    analysed(experiment)

    html = render_html(report_for(experiment))

    assert html.startswith("<!DOCTYPE html>")
    assert "Ready to scale" in html
    assert "raise traffic from 10 % to 50 %" in html
    assert html.count('id="criterion-') == 9
    assert html.count('class="chart chart-') == 4
    for key in ("forest", "cumulative", "weekly_segments", "survey"):
        assert f'id="chart-{key}"' in html
    # Standalone: nothing is fetched from elsewhere (no CDN, no scripts, no external CSS).
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "<script" not in html
    assert "<link" not in html


def test_html_shows_why_a_chart_is_missing(experiment):
    result = healthy_result()
    result["daily"] = []
    for m in result["metrics"]:
        for v in m["variants"]:
            v.pop("histogram", None)
    analysed(experiment, result)

    html = render_html(report_for(experiment))

    assert html.count('class="chart chart-') == 2
    assert "No daily results yet" in html
    assert "No survey answers yet" in html


# --- charts --------------------------------------------------------------------------------------


def test_charts_label_control_ci_and_use_the_okabe_ito_palette():
    result = healthy_result()

    forest = charts.forest_plot(result)
    cumulative = charts.cumulative_lift_chart(result)
    weekly = charts.weekly_segment_chart(result)
    survey = charts.survey_chart(result)

    assert "no change vs A" in forest and "95 % CI" in forest
    assert "Acceptance rate" in forest and "better than control" in forest
    assert charts.BETTER.lower() in forest.lower()
    assert "A (control)" in cumulative and "planned sample reached" in cumulative
    assert "95 % CI" in cumulative
    assert "Weekly difference in acceptance rate vs A (control), per segment" in weekly
    assert "All customers" in weekly and "loyal" in weekly and "95 % CI" in weekly
    assert "partial week (not counted)" in weekly
    assert "A (control)" in survey and "very helpful" in survey and "mean 4.30" in survey
    for svg in (forest, cumulative, weekly, survey):
        assert svg.startswith("<svg ")
        assert 'role="img"' in svg and "aria-label=" in svg


def test_forest_plot_marks_a_harm_in_words():
    result = healthy_result()
    rr = next(m for m in result["metrics"] if m["metric"] == "return_rate")
    rr["comparisons"][0].update(
        difference=0.03, ci_low=0.012, ci_high=0.048, p_value=0.001, p_value_adjusted=0.001
    )
    rr["comparisons"][0]["significant"] = True

    svg = charts.forest_plot(result)

    assert "worse than control" in svg
    assert charts.WORSE.lower() in svg.lower()


def _texts(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


def _bars_drawn(svg: str) -> int:
    return len(re.findall(r'<g id="patch_', svg))


def test_weekly_segment_chart_has_a_panel_per_segment_with_week_labels_and_partial_weeks():
    result = healthy_result()

    svg = charts.weekly_segment_chart(result)

    texts = _texts(svg)
    # Panel titles in reading order: all customers first, then each segment.
    titles = [t for t in texts if t in ("All customers", "new", "loyal")]
    assert titles == ["All customers", "new", "loyal"]
    for label in ("W45", "W46", "W47", "W48", "09 Nov"):
        assert texts.count(label) == 3, label  # on every panel's axis
    assert texts.count("partial") == 3
    # W48 is partial: one hollow hatched bar per panel, plus the legend's swatch.
    assert len(re.findall(r"fill: url\(#", svg)) == 3 + 1
    assert "Difference vs A (percentage points)" in texts
    assert "new, loyal" in re.search(r'aria-label="([^"]*)"', svg).group(1)


def test_weekly_segment_chart_draws_no_bar_for_a_week_without_customers_of_a_segment():
    result = healthy_result()
    full = charts.weekly_segment_chart(result)
    loyal = next(s for s in result["segments"] if s["segment"] == "loyal")
    loyal["weekly"] = [w for w in loyal["weekly"] if w["week"] != "2026-W46"]

    gap = charts.weekly_segment_chart(result)

    assert _bars_drawn(full) - _bars_drawn(gap) == 1
    assert "n/a" not in _texts(gap)
    assert _texts(gap).count("W46") == 3  # the week stays on the axis of every panel


def test_weekly_segment_chart_says_n_a_where_a_segment_week_is_too_small():
    result = healthy_result()
    result["segments"][0]["weekly"][0]["metrics"][0]["comparisons"] = [not_enough("B")]

    svg = charts.weekly_segment_chart(result)

    assert _texts(svg).count("n/a") == 1


def test_weekly_segment_chart_of_an_older_result_still_shows_all_customers():
    result = healthy_result()
    for s in result["segments"]:
        del s["weekly"]  # analysed before segments had a week-by-week breakdown

    svg = charts.weekly_segment_chart(result)

    assert "All customers" in _texts(svg) and "loyal" not in _texts(svg)


def test_weekly_segment_chart_without_weeks_is_an_empty_state():
    result = healthy_result(weekly=[])
    for s in result["segments"]:
        s["weekly"] = []

    drawn = {c["key"]: c for c in charts.all_charts(result)}

    assert charts.weekly_segment_chart(result) is None
    assert drawn["weekly_segments"]["svg"] is None
    assert drawn["weekly_segments"]["title"] == "Weekly lift per segment"
    assert drawn["weekly_segments"]["empty"].startswith("No weekly results yet")


def test_charts_cached_by_the_side_by_side_version_are_not_served(experiment):
    from django.core.cache import cache

    run = analysed(experiment)
    stale = [{"key": "weekly_segments", "title": "Lift by week and by segment", "svg": "<svg/>"}]
    # Version 3 drew weeks and segments side by side; its drawings must be redrawn.
    cache.set(f"offerlab:readiness-charts:{run.pk}:3", stale)

    drawn = context_for(report_for(experiment))["charts"]

    assert charts.CHARTS_VERSION > 3
    titles = [c["title"] for c in drawn]
    assert "Weekly lift per segment" in titles and "Lift by week and by segment" not in titles


def test_charts_without_data_return_none_instead_of_failing():
    assert all(c["svg"] is None for c in charts.all_charts({}))
    assert all(c["empty"] for c in charts.all_charts(None))


# --- management command ------------------------------------------------------------------------


def test_command_prints_text_by_default(experiment, capsys):
    analysed(experiment)

    call_command("readiness_report", "pp-email-timing")

    assert "VERDICT: READY TO SCALE" in capsys.readouterr().out


def test_command_writes_html_and_json_files(experiment, tmp_path, capsys):
    analysed(experiment)

    call_command(
        "readiness_report", "pp-email-timing", "--format", "html", "--output", tmp_path / "r.html"
    )
    call_command(
        "readiness_report", "pp-email-timing", "--format", "json", "-o", tmp_path / "r.json"
    )

    assert (tmp_path / "r.html").read_text().count("<svg ") == 4
    assert json.loads((tmp_path / "r.json").read_text())["verdict"] == "ready_to_scale"
    assert "Wrote the html readiness report of 'pp-email-timing' (ready_to_scale)" in (
        capsys.readouterr().out
    )


def test_command_on_a_never_analysed_experiment_says_how_to_run_one(experiment):
    with pytest.raises(
        CommandError, match=r"not been analysed.*manage\.py analyze pp-email-timing"
    ):
        call_command("readiness_report", "pp-email-timing")


def test_command_on_an_unknown_key_is_a_clear_error():
    with pytest.raises(CommandError, match="No experiment with key 'nope'"):
        call_command("readiness_report", "nope")


def test_command_reports_an_unwritable_output_path(experiment, tmp_path):
    analysed(experiment)

    with pytest.raises(CommandError, match="Cannot write"):
        call_command("readiness_report", "pp-email-timing", "-o", tmp_path / "missing" / "r.txt")


def test_failed_runs_are_not_reported(experiment):
    AnalysisRun.objects.create(
        experiment=experiment, status=AnalysisRun.RunStatus.FAILED, error="boom"
    )

    with pytest.raises(CommandError, match="not been analysed"):
        call_command("readiness_report", "pp-email-timing")


# --- admin results page ------------------------------------------------------------------------


@pytest.fixture
def admin_client_logged_in(client, staff_user):
    client.force_login(staff_user)
    return client


def test_admin_list_and_change_page_link_to_results(admin_client_logged_in, experiment):
    url = reverse("admin:experiments_experiment_results", args=[experiment.pk])

    changelist = admin_client_logged_in.get(reverse("admin:experiments_experiment_changelist"))
    change = admin_client_logged_in.get(
        reverse("admin:experiments_experiment_change", args=[experiment.pk])
    )

    assert f'href="{url}"' in changelist.content.decode()
    assert f'href="{url}"' in change.content.decode()


def test_admin_results_page_shows_verdict_criteria_and_charts(admin_client_logged_in, experiment):
    analysed(experiment)
    url = reverse("admin:experiments_experiment_results", args=[experiment.pk])

    response = admin_client_logged_in.get(url)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Ready to scale — recommended variant: B" in html
    assert html.count('id="criterion-') == 9
    assert html.count('class="chart chart-') == 4
    assert "Download as HTML" in html


def test_admin_results_page_without_analysis_says_how_to_run_one(
    admin_client_logged_in, experiment
):
    url = reverse("admin:experiments_experiment_results", args=[experiment.pk])

    response = admin_client_logged_in.get(url)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Not analysed yet" in html
    assert "manage.py analyze pp-email-timing" in html
    analyze = reverse("admin:experiments_experiment_analyze", args=[experiment.pk])
    assert f'action="{analyze}"' in html and 'value="Analyze now"' in html


def test_admin_results_download_is_the_standalone_page(admin_client_logged_in, experiment):
    analysed(experiment)
    url = reverse("admin:experiments_experiment_results", args=[experiment.pk])

    response = admin_client_logged_in.get(url + "?download=html")

    assert response["Content-Disposition"] == (
        'attachment; filename="pp-email-timing-readiness.html"'
    )
    assert response.content.decode().startswith("<!DOCTYPE html>")


def test_admin_results_page_needs_a_staff_login(client, experiment):
    url = reverse("admin:experiments_experiment_results", args=[experiment.pk])

    response = client.get(url)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_charts_of_a_run_are_drawn_once_and_then_served_from_cache(experiment, monkeypatch):
    run = analysed(experiment)
    drawn = []
    original = charts.all_charts
    monkeypatch.setattr(charts, "all_charts", lambda result: drawn.append(1) or original(result))

    first = context_for(report_for(experiment))["charts"]
    second = context_for(report_for(experiment))["charts"]

    assert len(drawn) == 1
    assert [c["svg"] for c in first] == [c["svg"] for c in second]
    assert run.pk == report_for(experiment).run.pk


def test_a_chart_that_cannot_be_drawn_is_reported_missing_and_the_rest_still_render(monkeypatch):
    def broken(result):
        raise KeyError("a field this chart did not expect")

    monkeypatch.setattr(
        charts,
        "CHARTS",
        (("forest", "Effect on every metric", broken, "unused"), *charts.CHARTS[1:]),
    )

    drawn = charts.all_charts(healthy_result())

    assert drawn[0]["svg"] is None
    assert "could not be drawn" in drawn[0]["empty"]
    assert all(c["svg"] for c in drawn[1:])


@pytest.mark.parametrize("mutation", ["delete", "none"])
def test_text_report_of_a_partial_result_never_raises(mutation):
    import copy

    from experiments.models import Experiment
    from experiments.readiness import ReadinessSettings, evaluate
    from experiments.report import Report
    from tests.experiments.test_readiness import _paths

    experiment = Experiment(key="x", name="X", factor="timing", traffic_percent=10.0)
    base = healthy_result()
    for path in list(_paths(base)):
        result = copy.deepcopy(base)
        parent = result
        for key in path[:-1]:
            parent = parent[key]
        if mutation == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = None
        run = AnalysisRun(experiment=experiment, result=result)
        report = Report(experiment, run, evaluate(result, ReadinessSettings()))

        assert "VERDICT:" in render_text(report), path
