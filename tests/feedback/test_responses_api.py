"""Public survey API: loading questions, saving answers as they go, finishing once."""

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.exceptions import ApplicationError
from feedback.models import Answer, Display, Response
from feedback.selectors import survey_display_for_token
from feedback.services import response_save, survey_for_offer
from tests.conftest import require_services
from tests.factories import running_experiment
from tests.feedback.conftest import make_offer, make_survey

pytestmark = pytest.mark.django_db

URL = "/api/v1/feedback/responses"


@pytest.fixture
def token(survey, offer) -> str:
    return survey_for_offer(offer=offer)["token"]


def post(client, token, answers, complete=False):
    return client.post(
        URL, {"token": token, "answers": answers, "complete": complete}, format="json"
    )


def test_get_survey_lists_questions_and_records_it_was_shown(anon, token, offer):
    res = anon.get(f"/api/v1/feedback/surveys/{token}")

    assert res.status_code == 200
    body = res.json()
    assert [q["key"] for q in body["questions"]] == ["helpful", "pushy", "why", "comment"]
    assert body["questions"][2]["choices"] == ["Price", "Fit with my purchase", "Timing"]
    assert body["about"] == "Lens cloth, Hard case"
    assert body["trigger"] == "offer_shown"
    assert (body["answers"], body["finished"]) == ({}, False)
    assert offer.customer_id not in res.content.decode()
    assert Display.objects.get(offer=offer).shown_at is not None


def test_answers_are_saved_one_by_one_then_finished(anon, token, offer):
    assert post(anon, token, {"helpful": 4}).status_code == 200
    assert post(anon, token, {"pushy": False}).status_code == 200
    response = Response.objects.get(offer=offer)
    assert (response.finished, response.answers) == (False, {"helpful": 4, "pushy": False})

    res = post(anon, token, {"why": "Timing", "comment": "  Nice pick  "}, complete=True)

    assert res.status_code == 200
    assert res.json() == {
        "answers": {"helpful": 4, "pushy": False, "why": "Timing", "comment": "Nice pick"},
        "finished": True,
    }
    rows = {
        a.question.key: (a.numeric_value, a.text_value)
        for a in Answer.objects.filter(response__offer=offer)
    }
    assert rows == {
        "helpful": (4.0, ""),
        "pushy": (0.0, "no"),
        "why": (None, "Timing"),
        "comment": (None, "Nice pick"),
    }
    # The widget resumes from what was saved.
    again = anon.get(f"/api/v1/feedback/surveys/{token}").json()
    assert again["finished"] is True and again["answers"]["helpful"] == 4


def test_changing_an_answer_updates_the_row_and_null_clears_it(anon, token, offer):
    post(anon, token, {"helpful": 2, "pushy": True})
    post(anon, token, {"helpful": 5, "pushy": None})
    rows = list(
        Answer.objects.filter(response__offer=offer).values_list("question__key", "numeric_value")
    )
    assert rows == [("helpful", 5.0)]
    assert Response.objects.get(offer=offer).answers == {"helpful": 5}


def test_a_whole_survey_is_one_write_for_its_answers_whatever_the_question_count(token, offer):
    display = survey_display_for_token(token)
    answers = {"helpful": 4, "pushy": False, "why": "Timing", "comment": "fine"}
    with CaptureQueriesContext(connection) as first:
        response_save(display=display, answers=answers, complete=False)
    with CaptureQueriesContext(connection) as second:
        response_save(
            display=display, answers={**answers, "helpful": 5, "comment": None}, complete=True
        )
    writes = [
        q["sql"].split()[0]
        for q in [*first, *second]
        if "feedback_answer" in q["sql"].split("WHERE")[0]
    ]
    # Per call: one upsert of every answer (the second also one DELETE for the cleared one).
    assert writes == ["INSERT", "DELETE", "INSERT"], writes
    assert Response.objects.get(offer=offer).answers == {
        "helpful": 5,
        "pushy": False,
        "why": "Timing",
    }
    rows = dict(
        Answer.objects.filter(response__offer=offer).values_list("question__key", "numeric_value")
    )
    assert rows == {"helpful": 5.0, "pushy": 0.0, "why": None}


def test_second_finished_response_is_a_conflict(anon, token, offer):
    assert post(anon, token, {"helpful": 5}, complete=True).status_code == 200
    res = post(anon, token, {"helpful": 1}, complete=True)
    assert res.status_code == 409
    assert Answer.objects.get(response__offer=offer).numeric_value == 5.0


@pytest.mark.parametrize(
    ("answers", "question"),
    [
        ({"nope": 3}, "nope"),
        ({"helpful": 0}, "helpful"),
        ({"helpful": 6}, "helpful"),
        ({"helpful": 3.5}, "helpful"),
        ({"helpful": "5"}, "helpful"),
        ({"helpful": True}, "helpful"),
        ({"pushy": "yes"}, "pushy"),
        ({"why": "Colour"}, "why"),
        ({"why": 1}, "why"),
        ({"comment": "x" * 2001}, "comment"),
        ({"comment": ["list"]}, "comment"),
    ],
)
def test_bad_answers_are_400_naming_the_question_and_nothing_is_saved(
    anon, token, offer, answers, question
):
    res = post(anon, token, {"helpful": 3, **answers} if question != "helpful" else answers)

    assert res.status_code == 400
    assert list(res.json()["answers"]) == [question]
    assert not Answer.objects.filter(response__offer=offer).exists()


def test_huge_number_rating_is_400_not_500(anon, token):
    body = '{"token": "' + token + '", "answers": {"helpful": 1e400}}'
    res = anon.generic("POST", URL, body, content_type="application/json")
    assert res.status_code == 400
    assert "answers" in res.json()


def test_text_of_exactly_2000_characters_is_kept(anon, token, offer):
    assert post(anon, token, {"comment": "é" * 2000}).status_code == 200
    assert Answer.objects.get(response__offer=offer).text_value == "é" * 2000


def test_nul_characters_are_dropped_from_comments(anon, token, offer):
    assert post(anon, token, {"comment": "ok\x00 then"}).status_code == 200
    assert Answer.objects.get(response__offer=offer).text_value == "ok then"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"answers": {"helpful": 3}}, "token"),
        ({"token": None, "answers": {}}, "token"),
        ({"token": "x", "answers": {}, "complete": "maybe"}, "complete"),
    ],
)
def test_missing_or_bad_fields_are_400_naming_them(anon, body, field):
    res = anon.post(URL, body, format="json")
    assert res.status_code == 400
    assert field in res.json()


def test_answers_must_be_an_object(anon, token):
    res = post(anon, token, ["helpful", 3])
    assert res.status_code == 400
    assert "answers" in res.json()


def test_malformed_json_is_400_not_500(anon):
    res = anon.generic("POST", URL, "{not json", content_type="application/json")
    assert res.status_code == 400


def test_beacon_style_text_plain_body_is_saved(anon, token, offer):
    """navigator.sendBeacon posts text/plain so the last typed comment survives page close."""
    import json

    body = json.dumps({"token": token, "answers": {"comment": "typed then left"}})
    res = anon.generic("POST", URL, body, content_type="text/plain;charset=UTF-8")
    assert res.status_code == 200
    assert Answer.objects.get(response__offer=offer).text_value == "typed then left"


def test_no_session_auth_so_csrf_does_not_apply(staff_user, token):
    """A logged-in browser session must not turn the public endpoint into a CSRF target."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    res = client.post(
        URL, {"token": token, "answers": {"helpful": 4}}, content_type="application/json"
    )
    assert res.status_code == 200


def test_responses_carry_the_variant_stamped_at_serve_time(anon, survey):
    experiment = running_experiment("stamp-api")
    control, treatment = experiment.variants.order_by("position")
    tokens = {}
    for variant in (control, treatment):
        offer = make_offer(experiment=experiment, variant=variant)
        tokens[variant.key] = survey_for_offer(offer=offer)["token"]
    post(anon, tokens["control"], {"helpful": 5}, complete=True)
    post(anon, tokens["delay-24"], {"helpful": 2}, complete=True)
    # Later changes to the offer do not re-derive the stamp.
    Display.objects.update()

    by_variant = dict(
        Answer.objects.filter(question__key="helpful").values_list(
            "response__display__variant__key", "numeric_value"
        )
    )
    assert by_variant == {"control": 5.0, "delay-24": 2.0}


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_answers_land_in_one_response_and_only_one_finish_wins():
    """Two tabs (or a retry) answering at once: both answers kept, one finish, one 409."""
    if connection.vendor != "postgresql":
        require_services("concurrent transactions need PostgreSQL (set DATABASE_URL)")
    make_survey(key="race-answers")
    offer = make_offer()
    token = survey_for_offer(offer=offer)["token"]
    display = survey_display_for_token(token)
    barrier = threading.Barrier(2)
    outcomes, errors = [], []

    def answer(answers, complete):
        try:
            barrier.wait(timeout=10)
            response_save(display=display, answers=answers, complete=complete)
            outcomes.append(200)
        except ApplicationError as exc:
            outcomes.append(exc.status_code)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    def race(a, b):
        threads = [threading.Thread(target=answer, args=args) for args in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)

    race(({"helpful": 4}, False), ({"pushy": True}, False))
    assert not errors and outcomes == [200, 200]
    assert Response.objects.get(offer=offer).answers == {"helpful": 4, "pushy": True}

    outcomes.clear()
    race(({"why": "Price"}, True), ({"why": "Timing"}, True))
    assert not errors and sorted(outcomes) == [200, 409]
    response = Response.objects.get(offer=offer)
    assert response.finished and response.answers["why"] in ("Price", "Timing")
    assert Answer.objects.filter(response=response).count() == 3


def test_null_answers_are_400_naming_answers(anon, token):
    res = anon.post(URL, {"token": token, "answers": None}, format="json")
    assert res.status_code == 400
    assert "answers" in res.json()
