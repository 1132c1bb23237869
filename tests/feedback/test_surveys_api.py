"""Staff survey API: create with validation, list with response counts."""

import jsonschema_rs
import pytest

from feedback.models import Survey
from feedback.selectors import survey_display_for_token
from feedback.services import response_save, survey_for_offer
from tests.feedback.conftest import make_offer

pytestmark = pytest.mark.django_db

URL = "/api/v1/feedback/surveys"


def body(**overrides):
    data = {
        "key": "after-offer",
        "name": "After the offer",
        "trigger": "offer_accepted",
        "sampling_rate": 0.25,
        "cooldown_days": 30,
        "active": True,
        "questions": [
            {
                "key": "helpful",
                "type": "rating",
                "text": "How helpful was this suggestion?",
                "metric": "csat",
                "low_label": "Not at all",
                "high_label": "Very",
            },
            {
                "key": "pushy",
                "type": "rating",
                "text": "How pushy did it feel?",
                "metric": "intrusiveness",
            },
            {"key": "why", "type": "single_choice", "text": "Why?", "choices": ["A", "B"]},
        ],
    }
    data.update(overrides)
    return data


def test_staff_creates_a_survey(staff):
    res = staff.post(URL, body(), format="json")

    assert res.status_code == 201, res.json()
    data = res.json()
    assert (data["key"], data["trigger"], data["sampling_rate"]) == (
        "after-offer",
        "offer_accepted",
        0.25,
    )
    assert [q["key"] for q in data["questions"]] == ["helpful", "pushy", "why"]
    assert data["questions"][0]["low_label"] == "Not at all"
    assert (data["displays"], data["responses"], data["response_rate"]) == (0, 0, None)
    survey = Survey.objects.get(key="after-offer")
    assert list(survey.questions.values_list("metric", flat=True)) == ["csat", "intrusiveness", ""]


def test_cooldown_defaults_to_the_setting(staff, settings):
    settings.OFFERLAB_SURVEY_DEFAULT_COOLDOWN_DAYS = 45
    data = body()
    del data["cooldown_days"]
    assert staff.post(URL, data, format="json").json()["cooldown_days"] == 45


def test_list_shows_response_counts(staff):
    staff.post(URL, body(sampling_rate=1.0, cooldown_days=0), format="json")
    tokens = [survey_for_offer(offer=make_offer())["token"] for _ in range(4)]
    response_save(
        display=survey_display_for_token(tokens[0]), answers={"helpful": 5}, complete=True
    )
    response_save(
        display=survey_display_for_token(tokens[1]), answers={"helpful": 2}, complete=False
    )

    res = staff.get(URL)

    assert res.status_code == 200
    [row] = res.json()
    assert (row["displays"], row["responses"], row["finished_responses"]) == (4, 2, 1)
    assert row["response_rate"] == 0.25


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"questions": []}, "questions"),
        (
            {"questions": [{"key": f"q{i}", "type": "yes_no", "text": "?"} for i in range(6)]},
            "questions",
        ),
        ({"sampling_rate": 1.5}, "sampling_rate"),
        ({"cooldown_days": -1}, "cooldown_days"),
        ({"trigger": "offer_clicked"}, "trigger"),
        ({"key": "has spaces"}, "key"),
        ({"questions": [{"key": "a", "type": "rating", "text": "?"}] * 2}, "questions"),
        (
            {"questions": [{"key": "a", "type": "single_choice", "text": "?", "choices": ["x"]}]},
            "questions[0]",
        ),
        (
            {"questions": [{"key": "a", "type": "yes_no", "text": "?", "choices": ["x", "y"]}]},
            "questions[0]",
        ),
        (
            {"questions": [{"key": "a", "type": "text", "text": "?", "metric": "csat"}]},
            "questions[0]",
        ),
        ({"questions": [{"key": "a", "type": "emoji", "text": "?"}]}, "questions"),
    ],
)
def test_invalid_surveys_are_400_naming_the_field(staff, overrides, field):
    res = staff.post(URL, body(**overrides), format="json")
    assert res.status_code == 400
    assert field in res.json(), res.json()
    assert not Survey.objects.exists()


def test_duplicate_key_is_a_409_conflict_naming_key(staff):
    assert staff.post(URL, body(), format="json").status_code == 201
    res = staff.post(URL, body(), format="json")
    assert res.status_code == 409 and "key" in res.json() and "detail" in res.json()
    assert Survey.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": 7}, "name"),
        ({"active": "yes"}, "active"),
        ({"sampling_rate": "1"}, "sampling_rate"),
    ],
)
def test_a_value_of_the_wrong_json_type_is_400_not_coerced(staff, overrides, field):
    res = staff.post(URL, body(**overrides), format="json")
    assert res.status_code == 400 and field in res.json()
    assert not Survey.objects.exists()


def test_a_number_as_a_question_label_is_400(staff):
    questions = body()["questions"]
    questions[0]["high_label"] = 0
    res = staff.post(URL, body(questions=questions), format="json")
    assert res.status_code == 400 and "high_label" in res.json()["questions"]["0"]


def test_only_staff_may_use_it(anon, storefront):
    assert anon.get(URL).status_code in (401, 403)
    assert storefront.post(URL, body(), format="json").status_code in (401, 403)
    assert not Survey.objects.exists()


@pytest.mark.parametrize(
    ("question", "valid"),
    [
        ({"type": "rating", "metric": "csat", "low_label": "No", "high_label": "Yes"}, True),
        ({"type": "yes_no", "metric": "csat"}, False),
        ({"type": "yes_no", "metric": ""}, True),
        ({"type": "text", "low_label": "No"}, False),
        ({"type": "text", "high_label": " \u3000"}, True),  # blank once trimmed
        ({"type": "single_choice", "choices": ["A", "B"]}, True),
        ({"type": "single_choice", "choices": ["A"]}, False),
        ({"type": "single_choice"}, False),
        ({"type": "single_choice", "choices": ["A", "A"]}, False),
        ({"type": "single_choice", "choices": ["A", "\u001c\r"]}, False),
        ({"type": "yes_no", "choices": ["A", "B"]}, False),
        ({"type": "text", "choices": []}, True),
    ],
)
def test_question_schema_says_which_fields_each_type_takes(staff, question, valid):
    schema = staff.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    question = {"key": "q", "text": "Well?", **question}
    root = {"$ref": "#/components/schemas/QuestionRequest", "components": schema["components"]}
    assert jsonschema_rs.Draft202012Validator(root).is_valid(question) is valid
    res = staff.post(URL, body(questions=[question]), format="json")
    assert res.status_code == (201 if valid else 400), res.json()
