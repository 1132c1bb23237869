"""Admin: a growth lead creates a survey with questions and reads results per variant."""

import pytest

from feedback.models import Survey
from feedback.selectors import survey_display_for_token
from feedback.services import response_save, survey_for_offer
from tests.factories import running_experiment
from tests.feedback.conftest import make_offer

pytestmark = pytest.mark.django_db


def inline(rows: list[dict], initial: int = 0) -> dict:
    data = {
        "questions-TOTAL_FORMS": str(len(rows)),
        "questions-INITIAL_FORMS": str(initial),
        "questions-MIN_NUM_FORMS": "1",
        "questions-MAX_NUM_FORMS": "5",
    }
    for i, row in enumerate(rows):
        for k, v in row.items():
            data[f"questions-{i}-{k}"] = v
    return data


SURVEY_FORM = {
    "key": "pp-feedback",
    "name": "Post-purchase feedback",
    "trigger": "offer_shown",
    "active": "on",
    "sampling_rate": "0.5",
    "cooldown_days": "30",
}
RATING = {
    "position": "0",
    "key": "helpful",
    "type": "rating",
    "text": "Helpful?",
    "metric": "csat",
    "choices": "[]",
    "low_label": "No",
    "high_label": "Yes",
}


def test_admin_creates_a_survey_with_questions(client, staff_user):
    client.force_login(staff_user)
    res = client.post("/admin/feedback/survey/add/", {**SURVEY_FORM, **inline([RATING])})
    assert res.status_code == 302, res.content.decode()[:3000]
    survey = Survey.objects.get(key="pp-feedback")
    assert [q.key for q in survey.questions.all()] == ["helpful"]


def test_admin_rejects_a_single_choice_question_without_choices(client, staff_user):
    client.force_login(staff_user)
    bad = {**RATING, "type": "single_choice", "metric": "", "low_label": "", "high_label": ""}
    res = client.post("/admin/feedback/survey/add/", {**SURVEY_FORM, **inline([bad])})
    assert res.status_code == 200
    assert "single-choice question needs" in res.content.decode()
    assert not Survey.objects.exists()


def test_admin_rejects_six_questions(client, staff_user):
    client.force_login(staff_user)
    rows = [{**RATING, "key": f"q{i}", "position": str(i)} for i in range(6)]
    res = client.post("/admin/feedback/survey/add/", {**SURVEY_FORM, **inline(rows)})
    assert res.status_code == 200
    assert not Survey.objects.exists()


def test_survey_page_shows_rates_distributions_and_comments_per_variant(client, staff_user, survey):
    experiment = running_experiment("admin-report")
    control, treatment = experiment.variants.order_by("position")
    plan = [
        (control, {"helpful": 5, "comment": "Exactly what I needed"}, True),
        (control, {"helpful": 4}, True),
        (control, {}, None),
        (treatment, {"helpful": 1, "pushy": True, "comment": "Too many emails"}, True),
        (treatment, {"helpful": 2}, False),
    ]
    for variant, answers, complete in plan:
        token = survey_for_offer(offer=make_offer(experiment=experiment, variant=variant))["token"]
        if complete is not None:
            response_save(
                display=survey_display_for_token(token), answers=answers, complete=complete
            )

    client.force_login(staff_user)
    changelist = client.get("/admin/feedback/survey/").content.decode()
    page = client.get(f"/admin/feedback/survey/{survey.pk}/change/").content.decode()

    assert "60%" in changelist  # 3 finished of 5 offered, both arms together
    assert "mean 4.50 (n=2)" in page  # control
    assert "mean 1.50 (n=2)" in page  # treatment
    assert "67%" in page and "50%" in page  # finished/offered: 2/3 control, 1/2 treatment
    assert "Exactly what I needed" in page and "Too many emails" in page
    assert '<svg role="img" aria-label="helpful: 1: 0, 2: 0, 3: 0, 4: 1, 5: 1 (n=2)"' in page


def test_questions_are_frozen_once_the_survey_was_offered(client, staff_user, survey):
    survey_for_offer(offer=make_offer())
    client.force_login(staff_user)
    page = client.get(f"/admin/feedback/survey/{survey.pk}/change/").content.decode()
    # Key and type are shown, not editable, and no question can be added or removed.
    assert 'name="questions-0-type"' not in page
    assert 'name="questions-0-key"' not in page
    assert 'name="questions-0-text"' in page
    assert 'name="questions-0-DELETE"' not in page
