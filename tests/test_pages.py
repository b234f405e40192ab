"""The server-rendered pages (tutor/pages) through Django's test client: login and roles, the learner's answer
loop with htmx fragments, idempotent double submits, CSRF, and the teacher's grid, chart data and history."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.utils.html import escape

from curriculum.models import Item
from curriculum.services import curriculum_import
from learners.models import Attempt, Classroom, User
from learners.services import AttemptOutcome, attempt_record, user_create
from tutor.models import Decision
from tutor.pages import present, selectors

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true", "HX-Current-URL": "http://testserver/learn/"}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def people(course: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        "ada": user_create(username="ada", role="learner", classroom="Class Ash", password="ada-secret-1"),
        "ben": user_create(username="ben", role="learner", classroom="Class Birch", password="ben-secret-1"),
        "tess": user_create(username="tess", role="teacher", classroom="Class Ash", password="tess-secret-1"),
        "tom": user_create(username="tom", role="teacher", classroom="Class Birch", password="tom-secret-1"),
        "root": user_create(username="root", role="admin", password="root-secret-1"),
    }


def login(client: Client, username: str) -> Client:
    client.force_login(User.objects.get(username=username))
    return client


def field(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m is not None, f"no field {name}"
    return m.group(1)


def json_script(html: str, dom_id: str) -> Any:
    m = re.search(rf'<script id="{dom_id}" type="application/json">(.*?)</script>', html, re.S)
    assert m is not None, f"no json_script {dom_id}"
    return json.loads(m.group(1))


def served(client: Client) -> tuple[str, Decision]:
    """GET /learn/ and the decision it logged."""
    r = client.get("/learn/")
    assert r.status_code == 200
    html = r.content.decode()
    decision = Decision.objects.get(pk=int(field(html, "decision")))
    return html, decision


def answer(client: Client, html: str, response: str, headers: dict[str, str] | None = None) -> Any:
    body = {k: field(html, k) for k in ("item", "decision", "client_attempt_id")} | {"response": response}
    return client.post("/learn/answer/", body, headers=headers)


# ---------------------------------------------------------------------------------------------------------------
# Login, logout, roles


@pytest.mark.parametrize("path", ["/", "/learn/", "/teach/", "/teach/classrooms/1/", "/teach/learners/1/"])
def test_pages_require_login(client: Client, path: str) -> None:
    r = client.get(path)
    assert (r.status_code, r["Location"]) == (302, f"/login/?next={path}")


def test_htmx_post_without_session_is_sent_to_login_by_header(client: Client) -> None:
    r = client.post("/learn/answer/", {}, headers=HTMX)
    assert (r.status_code, r["HX-Redirect"]) == (401, "/login/?next=/learn/")
    plain = client.post("/learn/answer/", {})
    assert (plain.status_code, plain["Location"]) == (302, "/login/?next=/learn/answer/")


def test_login_form_then_redirect_by_role(client: Client, people: dict[str, Any]) -> None:
    page = client.get("/login/").content.decode()
    assert '<label for="id_username">Username</label>' in page
    assert '<label for="id_password">Password</label>' in page
    bad = client.post("/login/", {"username": "ada", "password": "wrong"})
    assert bad.status_code == 200
    assert "Please enter a correct username and password" in bad.content.decode()
    for username, target in [("ada", "/learn/"), ("tess", "/teach/"), ("root", "/teach/")]:
        c = Client()
        r = c.post("/login/", {"username": username, "password": f"{username}-secret-1"})
        assert (r.status_code, r["Location"]) == (302, "/")
        home = c.get("/")
        assert (home.status_code, home["Location"]) == (302, target)


def test_logout_is_a_post_and_ends_the_session(client: Client, people: dict[str, Any]) -> None:
    login(client, "ada")
    assert client.get("/logout/").status_code == 405
    r = client.post("/logout/")
    assert (r.status_code, r["Location"]) == (302, "/login/")
    assert client.get("/learn/")["Location"] == "/login/?next=/learn/"


def test_wrong_role_gets_403(client: Client, people: dict[str, Any]) -> None:
    room = Classroom.objects.get(name="Class Ash")
    login(client, "tess")
    assert client.get("/learn/").status_code == 403
    assert client.post("/learn/answer/", {}).status_code == 403
    learner = login(Client(), "ada")
    for path in [
        "/teach/",
        f"/teach/classrooms/{room.pk}/",
        f"/teach/learners/{people['ada']['learner_id']}/",
    ]:
        r = learner.get(path)
        assert r.status_code == 403, path
        assert "Not allowed" in r.content.decode()
    assert Decision.objects.count() == 0


# ---------------------------------------------------------------------------------------------------------------
# The learner's loop


def test_learn_page_shows_the_scheduled_item_and_the_mastery_overview(
    client: Client, people: dict[str, Any], course: dict[str, Any]
) -> None:
    login(client, "ada")
    html, decision = served(client)
    assert decision.learner_id == people["ada"]["learner_id"]
    # Nothing mastered yet: the scheduler serves the root skill, a number item (a text box, no radios).
    assert decision.item.code in {"count-1", "count-2"}
    assert escape(decision.item.prompt) in html
    assert field(html, "item") == str(decision.item_id)
    assert re.fullmatch(r"[0-9a-f]{32}", field(html, "client_attempt_id"))
    assert '<label for="response">Your answer</label>' in html
    assert 'inputmode="decimal"' in html
    assert 'hx-post="/learn/answer/"' in html
    assert 'type="radio"' not in html
    assert "Practising: Counting" in html
    overview = html[html.index('id="mastery"') :]
    assert [m for m in ("Counting", "Addition", "Subtraction", "Fractions") if m in overview] == [
        "Counting",
        "Addition",
        "Subtraction",
        "Fractions",
    ]
    assert "no-store" in client.get("/learn/")["Cache-Control"]
    again, second = served(client)
    assert second.pk != decision.pk
    assert field(again, "client_attempt_id") != field(html, "client_attempt_id")


def test_an_answer_posted_twice_is_stored_once_with_the_same_feedback(
    client: Client, people: dict[str, Any]
) -> None:
    login(client, "ada")
    html, decision = served(client)
    key = decision.item.answer["value"]
    first = answer(client, html, key, headers=HTMX)
    second = answer(client, html, key, headers=HTMX)
    assert (first.status_code, second.status_code) == (200, 200)
    attempt = Attempt.objects.get(learner_id=people["ada"]["learner_id"])
    assert (attempt.decision_id, attempt.client_attempt_id, attempt.correct) == (
        decision.pk,
        field(html, "client_attempt_id"),
        True,
    )
    p = attempt.result["mastery"][0]["p_mastery"]
    strip = re.compile(r'name="csrfmiddlewaretoken" value="[^"]*"')
    bodies = [strip.sub("", r.content.decode()) for r in (first, second)]
    assert bodies[0] == bodies[1]
    body = bodies[0]
    assert "Correct!" in body
    assert f'aria-label="Counting: {present.percent(p)} percent"' in body
    assert "Correct answer" not in body and "Worked solution" not in body
    # The fragment swaps into #panel and refreshes the overview out of band; a "next" button follows.
    assert "<html" not in body
    assert 'id="mastery" aria-labelledby="mastery-title" hx-swap-oob="true"' in body
    assert f"Counting: {present.percent(p)} percent, 1 of 1 correct" in body
    assert 'hx-post="/learn/next/"' in body


def test_a_wrong_answer_shows_the_key_and_the_worked_solution(client: Client, people: dict[str, Any]) -> None:
    login(client, "ada")
    html, decision = served(client)
    r = answer(client, html, "999", headers=HTMX)
    body = r.content.decode()
    assert r.status_code == 200
    assert "Not quite." in body
    assert f'<dd id="correct-answer">{decision.item.answer["value"]}</dd>' in body
    assert f'<p class="solution" id="solution">{escape(decision.item.solution)}</p>' in body
    assert '<dd id="your-answer">999</dd>' in body
    assert Attempt.objects.get().correct is False


def test_a_malformed_answer_is_refused_with_422_and_nothing_is_stored(
    client: Client, people: dict[str, Any]
) -> None:
    login(client, "ada")
    html, decision = served(client)
    r = answer(client, html, "abc", headers=HTMX)
    body = r.content.decode()
    assert r.status_code == 422
    assert "Expected a number such as 42 or 3.5, not &#x27;abc&#x27;" in body
    assert 'aria-invalid="true"' in body
    # Same question, same key (nothing was stored under it), the typed text kept.
    assert (field(body, "decision"), field(body, "client_attempt_id")) == (
        str(decision.pk),
        field(html, "client_attempt_id"),
    )
    assert 'value="abc"' in body
    assert Attempt.objects.count() == 0
    empty = answer(client, html, "", headers=HTMX)
    assert empty.status_code == 422
    assert "Please enter an answer." in empty.content.decode()


def test_an_answer_without_htmx_renders_the_whole_page(client: Client, people: dict[str, Any]) -> None:
    login(client, "ada")
    html, decision = served(client)
    r = answer(client, html, decision.item.answer["value"])
    body = r.content.decode()
    assert r.status_code == 200
    assert body.startswith("<!doctype html>")
    assert "Correct!" in body and "hx-swap-oob" not in body


def test_next_button_serves_a_new_decision(client: Client, people: dict[str, Any]) -> None:
    login(client, "ada")
    served(client)
    r = client.post("/learn/next/", headers=HTMX)
    assert r.status_code == 200
    assert 'id="answer-form"' in r.content.decode()
    assert Decision.objects.count() == 2
    plain = client.post("/learn/next/")
    assert (plain.status_code, plain["Location"]) == (303, "/learn/")


def test_answer_posts_need_the_csrf_token(people: dict[str, Any]) -> None:
    client = login(Client(enforce_csrf_checks=True), "ada")
    html, decision = served(client)
    assert answer(client, html, "3", headers=HTMX).status_code == 403
    assert Attempt.objects.count() == 0
    body = {"csrfmiddlewaretoken": field(html, "csrfmiddlewaretoken")}
    ok = client.post(
        "/learn/answer/",
        body
        | {k: field(html, k) for k in ("item", "decision", "client_attempt_id")}
        | {"response": decision.item.answer["value"]},
        headers=HTMX,
    )
    assert ok.status_code == 200
    assert Attempt.objects.count() == 1


def test_another_learners_decision_is_refused(client: Client, people: dict[str, Any]) -> None:
    login(client, "ada")
    html, _ = served(client)
    ben = login(Client(), "ben")
    r = answer(ben, html, "3", headers=HTMX)
    assert r.status_code == 400
    assert f"no decision {field(html, 'decision')} for this learner" in r.content.decode()
    assert Attempt.objects.count() == 0


def test_feedback_shows_an_explanation_when_the_service_adds_one(
    client: Client, people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    login(client, "ada")
    html, decision = served(client)
    skill = decision.item.skills.get()
    result = {
        "attempt_id": 1,
        "item": decision.item_id,
        "correct": False,
        "feedback": {
            "message": "Not quite.",
            "correct_answer": "3",
            "solution": "Count them.",
            "explanation": {"text": "You counted one star twice.", "id": 7},
        },
        "mastery": [{"skill_id": skill.pk, "skill": skill.code, "p_mastery": 0.25}],
    }
    monkeypatch.setattr("tutor.pages.views.attempt_record", lambda **kw: AttemptOutcome(result, created=True))
    body = answer(client, html, "4", headers=HTMX).content.decode()
    assert '<p class="solution" id="explanation">You counted one star twice.</p>' in body
    assert 'aria-label="Counting: 25 percent"' in body


def test_multiple_choice_items_are_radio_buttons(client: Client, db: Any) -> None:
    curriculum_import(
        document={
            "skills": [{"code": "add", "name": "Addition", "description": "", "prerequisites": []}],
            "items": [
                {
                    "code": "mc",
                    "skills": ["add"],
                    "prompt": "3 + 4 = ?",
                    "answer": {"type": "choice", "value": "B", "choices": ["6", "7", "8"]},
                    "solution": "7.",
                }
            ],
        }
    )
    user_create(username="cleo", role="learner", password="cleo-secret-1")
    login(client, "cleo")
    html, _ = served(client)
    radios = re.findall(
        r'<input type="radio" name="response" id="choice-([A-C])" value="([^"]*)" required', html
    )
    assert radios == [("A", "6"), ("B", "7"), ("C", "8")]
    for letter in "ABC":
        assert f'<label for="choice-{letter}">' in html
    assert "<legend>Choose one answer</legend>" in html
    r = answer(client, html, "7", headers=HTMX)
    assert "Correct!" in r.content.decode()
    assert Attempt.objects.get().response == "7"


# ---------------------------------------------------------------------------------------------------------------
# Teachers


def _practise(learner_id: int, course: dict[str, Any], answers: list[tuple[str, str]]) -> list[Attempt]:
    for n, (code, response) in enumerate(answers):
        attempt_record(
            learner_id=learner_id,
            item_id=course["items"][code].pk,
            response=response,
            client_attempt_id=f"k{n}",
        )
    return list(Attempt.objects.filter(learner_id=learner_id).order_by("id"))


def test_teacher_sees_only_their_classes(client: Client, people: dict[str, Any]) -> None:
    login(client, "tess")
    ash = Classroom.objects.get(name="Class Ash")
    body = client.get("/teach/").content.decode()
    assert f'<a href="/teach/classrooms/{ash.pk}/">Class Ash</a>' in body
    assert "1 learner<" in body
    assert "Class Birch" not in body
    admin = login(Client(), "root").get("/teach/").content.decode()
    assert "Class Ash" in admin and "Class Birch" in admin


def test_teacher_cannot_open_another_teachers_class_or_learner(
    client: Client, people: dict[str, Any]
) -> None:
    birch = Classroom.objects.get(name="Class Birch")
    login(client, "tess")
    assert client.get(f"/teach/classrooms/{birch.pk}/").status_code == 404
    assert client.get(f"/teach/learners/{people['ben']['learner_id']}/").status_code == 404
    assert client.get("/teach/classrooms/999999/").status_code == 404
    assert client.get("/teach/learners/999999/").status_code == 404
    tom = login(Client(), "tom")
    assert tom.get(f"/teach/classrooms/{birch.pk}/").status_code == 200
    root = login(Client(), "root")
    assert root.get(f"/teach/learners/{people['ada']['learner_id']}/").status_code == 200


def test_classroom_page_has_the_heat_map_grid_and_the_chart_data(
    client: Client, people: dict[str, Any], course: dict[str, Any]
) -> None:
    ada = people["ada"]["learner_id"]
    attempts = _practise(ada, course, [("count-1", "3"), ("count-2", "5")])
    p = attempts[-1].result["mastery"][0]["p_mastery"]
    ash = Classroom.objects.get(name="Class Ash")
    login(client, "tess")
    r = client.get(f"/teach/classrooms/{ash.pk}/")
    body = r.content.decode()
    assert r.status_code == 200
    assert '<table class="grid" id="mastery-grid">' in body
    row = body[body.index(f'<a href="/teach/learners/{ada}/">ada</a>') :]
    row = row[: row.index("</tr>")]
    cells = re.findall(r'<td class="heat-(\w+)"', row)
    assert cells == [str(int(p * 10)), "none", "none", "none"]
    assert f"ada · Counting: {present.percent(p)}%" in row
    chart = json_script(body, "class-chart-data")
    assert chart["labels"] == ["count", "add", "sub", "frac"]
    assert chart["values"] == [pytest.approx(p, abs=1e-12), None, None, None]
    assert chart["threshold"] == 0.95
    assert 'data-chart="bars" data-source="class-chart-data"' in body
    assert "vendor/uplot-1.6.32/uPlot.iife.min.js" in body


def test_learner_detail_charts_the_stored_mastery_after_each_answer(
    client: Client, people: dict[str, Any], course: dict[str, Any]
) -> None:
    ada = people["ada"]["learner_id"]
    attempts = _practise(
        ada, course, [("count-1", "3"), ("add-1", "5"), ("count-2", "5"), ("sub-expr", "x + 2")]
    )
    login(client, "tess")
    r = client.get(f"/teach/learners/{ada}/")
    body = r.content.decode()
    assert r.status_code == 200
    count, add, sub = (course["skills"][c].pk for c in ("count", "add", "sub"))

    def stored(n: int, skill_id: int) -> float:
        return next(m["p_mastery"] for m in attempts[n - 1].result["mastery"] if m["skill_id"] == skill_id)

    count_chart = json_script(body, f"history-{count}-data")
    assert (count_chart["x"], count_chart["y"]) == ([1, 3], [stored(1, count), stored(3, count)])
    add_chart = json_script(body, f"history-{add}-data")
    assert (add_chart["x"], add_chart["y"]) == ([2, 4], [stored(2, add), stored(4, add)])
    assert json_script(body, f"history-{sub}-data")["x"] == [4]
    assert f'id="history-{course["skills"]["frac"].pk}-data"' not in body
    assert body.count('data-chart="line"') == 3
    assert "4 answers" in body


def test_mastery_history_keeps_the_latest_answers_numbered_in_the_whole_log(
    people: dict[str, Any], course: dict[str, Any]
) -> None:
    ada = people["ada"]["learner_id"]
    attempts = _practise(ada, course, [("count-1", "3"), ("count-2", "4"), ("count-1", "3")])
    learner = attempts[0].learner
    history = selectors.mastery_history(learner=learner, limit=2)
    assert (history["n_attempts"], history["shown"], history["truncated"]) == (3, 2, True)
    [series] = history["skills"]
    assert series["points"] == [[n, attempts[n - 1].result["mastery"][0]["p_mastery"]] for n in (2, 3)]
    assert series["name"] == "Counting"


# ---------------------------------------------------------------------------------------------------------------
# Display helpers, static files


def test_heat_levels_cut_at_tenths() -> None:
    assert [present.heat_level(p) for p in (None, 0.0, 0.0999, 0.1, 0.55, 0.95, 1.0)] == [
        None,
        0,
        0,
        1,
        5,
        9,
        9,
    ]
    assert [present.percent(p) for p in (None, 0.0, 0.126, 0.29, 0.5, 0.9496, 0.95, 1.0)] == [
        None,
        0,
        12,
        29,
        50,
        94,
        95,
        100,
    ]


def _luminance(hex_colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def test_heat_map_colours_keep_text_readable() -> None:
    css = (ROOT / "tutor/static/tutor/site.css").read_text()
    rules = re.findall(r"\.heat-(\w+) \{ background: (#[0-9a-f]{6}); color: (#[0-9a-f]{3,6}); \}", css)
    assert [name for name, _, _ in rules] == ["none"] + [str(i) for i in range(10)]
    for name, bg, fg in rules:
        fg = fg if len(fg) == 7 else "#" + "".join(c * 2 for c in fg[1:])
        hi, lo = sorted((_luminance(bg), _luminance(fg)), reverse=True)
        assert (hi + 0.05) / (lo + 0.05) >= 4.5, name


def test_vendored_libraries_are_served_locally_with_their_licences() -> None:
    for path, marker in [
        ("vendor/htmx-2.0.11/htmx.min.js", 'version:"2.0.11"'),
        ("vendor/uplot-1.6.32/uPlot.iife.min.js", "uPlot (v1.6.32)"),
    ]:
        found = finders.find(path)
        assert found is not None, path
        assert marker in Path(found).read_text()
        assert (Path(found).parent / "LICENSE").is_file()
    templates = "".join(p.read_text() for p in (ROOT / "tutor/templates").rglob("*.html"))
    assert re.findall(r'(?:src|href)="(?:https?:)?//', templates) == []


def test_items_reach_the_page_without_their_key(people: dict[str, Any], course: dict[str, Any]) -> None:
    item = Item.objects.get(code="add-mc")
    shown = present.exercise(
        item_id=item.pk,
        prompt=item.prompt,
        answer=item.answer,
        skills=["Addition"],
        decision_id=1,
        client_attempt_id="k",
    )
    assert sorted(shown) == [
        "choices",
        "client_attempt_id",
        "decision_id",
        "error",
        "hint",
        "inputmode",
        "item_id",
        "prompt",
        "response",
        "skills",
        "type",
    ]
    assert shown["choices"] == [
        {"letter": "A", "text": "6", "checked": False},
        {"letter": "B", "text": "7", "checked": False},
        {"letter": "C", "text": "8", "checked": False},
    ]
