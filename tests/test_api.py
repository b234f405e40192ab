import json

import pytest
from django.test import Client

from learners.models import Attempt
from learners.services import user_create
from tutor.models import Decision

pytestmark = pytest.mark.django_db


def call(client, method, path, token=None, body=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if body is not None:
        return getattr(client, method)(path, data=json.dumps(body), content_type="application/json", **headers)
    return getattr(client, method)(path, **headers)


@pytest.fixture
def people(course):
    return {
        "ada": user_create(username="ada", role="learner", classroom="A"),
        "ben": user_create(username="ben", role="learner", classroom="B"),
        "tess": user_create(username="tess", role="teacher", classroom="A"),
        "root": user_create(username="root", role="admin"),
    }


def test_openapi_schema_lists_the_endpoints(client: Client):
    schema = client.get("/api/v1/openapi.json").json()
    paths = schema["paths"]
    for p in [
        "/api/v1/me",
        "/api/v1/learners/{learner_id}/next",
        "/api/v1/learners/{learner_id}/attempts",
        "/api/v1/learners/{learner_id}/mastery",
        "/api/v1/classrooms/{classroom_id}/mastery",
        "/api/v1/curriculum/import",
        "/api/v1/curriculum/export",
    ]:
        assert p in paths, p


def test_me_answers_what_create_user_printed(client, people):
    ada = people["ada"]
    body = call(client, "get", "/api/v1/me", ada["token"]).json()
    assert body == {k: ada[k] for k in ("user_id", "username", "role", "learner_id", "classroom_ids")}
    assert call(client, "get", "/api/v1/me").status_code == 401
    assert call(client, "get", "/api/v1/me", "tut_wrong").status_code == 401


def test_next_then_attempt_round_trip(client, people, course):
    ada = people["ada"]
    lid = ada["learner_id"]
    served = call(client, "post", f"/api/v1/learners/{lid}/next", ada["token"])
    assert served.status_code == 200, served.content
    s = served.json()
    # Nothing mastered yet: the first decision is on the root skill of the graph.
    assert s["skills"] == ["count"]
    assert 0 < s["propensity"] <= 1
    decision = Decision.objects.get(pk=s["decision_id"])
    assert decision.item_id == s["item_id"]
    assert abs(sum(p for _, p, _ in decision.candidates) - 1) < 1e-6
    assert all(0 <= q <= 1 for _, _, q in decision.candidates)
    key = course["items"][s["code"]].answer["value"]
    body = {"item": s["item_id"], "response": key, "client_attempt_id": "c1", "decision_id": s["decision_id"]}
    r1 = call(client, "post", f"/api/v1/learners/{lid}/attempts", ada["token"], body)
    r2 = call(client, "post", f"/api/v1/learners/{lid}/attempts", ada["token"], body)
    assert (r1.status_code, r2.status_code) == (201, 200)
    assert r1.json() == r2.json()
    assert r1.json()["correct"] is True
    attempt = Attempt.objects.get(learner_id=lid)
    assert attempt.decision_id == s["decision_id"]
    assert attempt.propensity == pytest.approx(s["propensity"])
    mastery = call(client, "get", f"/api/v1/learners/{lid}/mastery", ada["token"]).json()
    count = next(m for m in mastery["skills"] if m["skill"] == "count")
    assert count["n_attempts"] == 1 and count["p_mastery"] == r1.json()["mastery"][0]["p_mastery"]
    assert len(mastery["skills"]) == 4


def test_errors_name_the_field_and_lose_nothing(client, people, course):
    ada = people["ada"]
    lid = ada["learner_id"]
    path = f"/api/v1/learners/{lid}/attempts"
    item = course["items"]["add-1"]
    ok = call(client, "post", path, ada["token"], {"item": item.pk, "response": "4", "client_attempt_id": "k"})
    assert ok.status_code == 201
    missing = call(client, "post", path, ada["token"], {"item": item.pk, "client_attempt_id": "m"})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "response"
    malformed = call(client, "post", path, ada["token"], {"item": item.pk, "response": "banana", "client_attempt_id": "m"})
    assert malformed.status_code == 400
    assert malformed.json()["errors"][0]["field"] == "response"
    unknown = call(client, "post", path, ada["token"], {"item": 10**9, "response": "4", "client_attempt_id": "u"})
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "item"
    wrong_decision = call(client, "post", path, ada["token"],
                          {"item": item.pk, "response": "4", "client_attempt_id": "d", "decision_id": 10**9})
    assert wrong_decision.status_code == 400 and wrong_decision.json()["errors"][0]["field"] == "decision_id"
    reuse = call(client, "post", path, ada["token"], {"item": item.pk, "response": "5", "client_attempt_id": "k"})
    assert reuse.status_code == 409
    assert Attempt.objects.filter(learner_id=lid).count() == 1
    not_json = client.post(path, data="{not json", content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {ada['token']}")
    assert 400 <= not_json.status_code < 500
    assert Attempt.objects.filter(learner_id=lid).count() == 1


def test_access_rules(client, people):
    ada, ben, tess, root = people["ada"], people["ben"], people["tess"], people["root"]
    # A learner cannot see or act for another learner: 404, ids leak nothing.
    assert call(client, "get", f"/api/v1/learners/{ben['learner_id']}/mastery", ada["token"]).status_code == 404
    assert call(client, "post", f"/api/v1/learners/{ben['learner_id']}/next", ada["token"]).status_code == 404
    assert call(client, "get", "/api/v1/learners/999999/mastery", ada["token"]).status_code == 404
    # A teacher sees learners of their classes only, and cannot answer for them.
    assert call(client, "get", f"/api/v1/learners/{ada['learner_id']}/mastery", tess["token"]).status_code == 200
    assert call(client, "get", f"/api/v1/learners/{ben['learner_id']}/mastery", tess["token"]).status_code == 404
    assert call(client, "post", f"/api/v1/learners/{ada['learner_id']}/next", tess["token"]).status_code == 403
    room_a, room_b = ada["classroom_id"], ben["classroom_id"]
    assert call(client, "get", f"/api/v1/classrooms/{room_a}/mastery", tess["token"]).status_code == 200
    assert call(client, "get", f"/api/v1/classrooms/{room_b}/mastery", tess["token"]).status_code == 404
    assert call(client, "get", f"/api/v1/classrooms/{room_a}/mastery", ada["token"]).status_code == 403
    # Curriculum import/export are for admins.
    assert call(client, "get", "/api/v1/curriculum/export", tess["token"]).status_code == 403
    assert call(client, "get", "/api/v1/curriculum/export", root["token"]).status_code == 200


def test_classroom_mastery_for_teacher(client, people, course):
    ada, tess = people["ada"], people["tess"]
    item = course["items"]["count-1"]
    call(client, "post", f"/api/v1/learners/{ada['learner_id']}/attempts", ada["token"],
         {"item": item.pk, "response": "3", "client_attempt_id": "x"})
    body = call(client, "get", f"/api/v1/classrooms/{ada['classroom_id']}/mastery", tess["token"]).json()
    count = next(s for s in body["skills"] if s["skill"] == "count")
    assert count["attempts"] == 1 and count["mean_p_mastery"] is not None
    assert [lr["learner_id"] for lr in body["learners"]] == [ada["learner_id"]]


def test_curriculum_import_export_via_api(client, people, course):
    root = people["root"]
    exported = call(client, "get", "/api/v1/curriculum/export", root["token"]).json()
    again = call(client, "post", "/api/v1/curriculum/import", root["token"], exported)
    assert again.status_code == 200
    assert again.json() == {"skills_created": 0, "skills_updated": 0, "items_created": 0, "items_updated": 0}
    bad = {"skills": [{"code": "add", "name": "Addition", "prerequisites": ["sub"]}], "items": []}
    refused = call(client, "post", "/api/v1/curriculum/import", root["token"], bad)
    assert refused.status_code == 400
    assert "prerequisite cycle" in refused.json()["detail"]
    assert call(client, "get", "/api/v1/curriculum/export", root["token"]).json() == exported
