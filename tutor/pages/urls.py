from django.contrib.auth.views import LoginView, LogoutView
from django.urls import path

from tutor.pages import views

app_name = "pages"

urlpatterns = [
    path(
        "login/",
        LoginView.as_view(template_name="pages/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", LogoutView.as_view(next_page="pages:login"), name="logout"),
    path("", views.home, name="home"),
    path("learn/", views.learn, name="learn"),
    path("learn/next/", views.learn_next, name="learn-next"),
    path("learn/answer/", views.learn_answer, name="learn-answer"),
    path("teach/", views.teach, name="teach"),
    path("teach/classrooms/<int:classroom_id>/", views.teach_classroom, name="teach-classroom"),
    path("teach/learners/<int:learner_id>/", views.teach_learner, name="teach-learner"),
]
