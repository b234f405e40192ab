"""Any registered tracer can be refitted from the service's attempt log, activated, and then serve the online
update; the stored mastery stays equal to a replay of the log with the active version."""

import numpy as np
import pytest

from learners.models import LearnerState, TracerVersion
from learners.services import attempt_record, mastery_check, tracer_activate, tracer_active, tracer_refit
from learners.tracing.registry import TRACERS, available
from tests.factories import LearnerFactory

pytestmark = pytest.mark.django_db

KEYS = {"count-1": "3", "count-2": "5", "add-1": "4", "add-2": "12", "sub-1": "5", "frac-1": "1/2"}


def fill_log(course, n_learners=12, steps=10, seed=0):
    rng = np.random.default_rng(seed)
    codes = list(KEYS)
    learners = []
    for k in range(n_learners):
        lr = LearnerFactory()
        learners.append(lr)
        p = 0.3
        for step in range(steps):
            code = codes[(k + step) % len(codes)]
            ok = rng.random() < p
            attempt_record(learner_id=lr.pk, item_id=course["items"][code].pk,
                           response=KEYS[code] if ok else "0", client_attempt_id=f"{k}-{step}")
            p = min(0.95, p + 0.07)
    return learners


@pytest.mark.parametrize("name", ["bkt_forget", "bkt_idem", "elo", "pfa", "best_lr", "best_lr_plus", "dkt"])
def test_refit_activate_and_serve_any_registered_tracer(course, name):
    assert name in available()
    learners = fill_log(course)
    out = tracer_refit(name=name)
    assert out.created and out.version.name == name
    assert set(out.version.metrics["holdout"]) >= {"rmse", "logloss"}
    tracer_activate(version_id=out.version.pk)
    version, tracer = tracer_active()
    assert version.pk == out.version.pk
    assert type(tracer) is TRACERS[name]
    # The next answer folds the learner's whole log with the new tracer, then the new answer.
    first = learners[0]
    result = attempt_record(learner_id=first.pk, item_id=course["items"]["add-1"].pk, response="4",
                            client_attempt_id="after-refit").result
    assert LearnerState.objects.get(learner=first).tracer_version_id == out.version.pk
    assert 0.0 <= result["mastery"][0]["p_mastery"] <= 1.0
    assert mastery_check(learner_ids=[first.pk]) == []
    assert TracerVersion.objects.filter(active=True).count() == 1
