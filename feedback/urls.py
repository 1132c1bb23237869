from django.urls import path

from feedback.apis import ResponseSaveApi, SurveyListCreateApi, SurveyPublicApi

app_name = "feedback"

urlpatterns = [
    path("surveys", SurveyListCreateApi.as_view(), name="survey-list"),
    path("surveys/<str:token>", SurveyPublicApi.as_view(), name="survey-public"),
    path("responses", ResponseSaveApi.as_view(), name="response-save"),
]
