from django.urls import path

from feedback.pages import survey_page

app_name = "feedback_pages"

urlpatterns = [
    path("s/<str:token>", survey_page, name="survey-page"),
]
