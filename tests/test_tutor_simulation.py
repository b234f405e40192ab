"""The served path measured end to end: simulated learners answer through the real HTTP server."""

import pytest

from learners.models import Attempt
from learners.services import mastery_check, user_create
from tutor.models import Decision
from tutor.services.simulation import simulate_http

pytestmark = pytest.mark.django_db(transaction=True)


def test_simulated_learners_through_the_http_api(live_server, course):
    admin = user_create(username="sim-admin", role="admin")
    out = simulate_http(base_url=live_server.url, admin_token=admin["token"], n_learners=3, steps=8, ks=(4, 8))
    answered = Attempt.objects.filter(learner_id__in=out["learner_ids"]).count()
    assert answered == out["next_ms"]["n"] == out["attempt_ms"]["n"]
    assert 0 < answered <= 24
    # Every answer was served by a logged decision with its propensity.
    assert Attempt.objects.filter(learner_id__in=out["learner_ids"], decision__isnull=True).count() == 0
    assert Decision.objects.filter(learner_id__in=out["learner_ids"]).count() == answered
    assert set(out["post_test"]) == {4, 8} and all(0 < v <= 1 for v in out["post_test"].values())
    assert out["next_ms"]["p99"] > 0
    assert mastery_check(learner_ids=out["learner_ids"]) == []
