"""Learning from feedback: ratings of explanations, the style bandit, and reward model versions.

- Feedback: a learner says whether an explanation helped (yes/no); a teacher rates it 1-5 and may write a
  corrected text, which must itself state the right result. One verdict per person and explanation, replaced on
  repeat.
- The outcome signal: whether the learner's next attempt on a skill of the same item was correct. It is computed
  from the attempt log, up to a cut-off, so a training set is reproducible.
- The style bandit (`tutor.llm.reward.StyleBandit`) chooses the explanation style per wrong answer, and every
  choice is logged with its propensity (`StyleDecision`); a task folds the outcomes in, each exactly once.
- Reward models are trained by a task on the feedback and outcomes up to two cut-offs, versioned by them (so
  training twice changes nothing), saved as JSON + npz, and activated when their held-out AUC beats both a floor
  and the active version's AUC on the same held-out rows. While one is active, serving draws several candidates
  and keeps the best (`Explainer(scorer=...)`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from curriculum.generation.answers import AnswerSpec
from curriculum.models import Item
from learners.errors import InvalidInput, NotFound
from learners.models import Attempt, User
from tutor.llm.checks import same, stated_result
from tutor.llm.explain import ItemInfo
from tutor.llm.prompts import LEVELS, STYLES
from tutor.llm.reward import Candidate, RewardModel, StyleBandit, StyleChoice
from tutor.models import Explanation, ExplanationFeedback, RewardModelVersion, StyleBanditState, StyleDecision
from tutor.services.llm import llm_embedder_name

BANDIT = "default"
MIN_TRAINING_ROWS = 20
MIN_AUC = 0.55
HOLDOUT_PER_MILLE = 250

# ---------------------------------------------------------------------------------------------------------------
# Feedback


@dataclass(frozen=True)
class FeedbackOutcome:
    feedback: ExplanationFeedback
    created: bool


def feedback_give(
    *,
    user: User,
    explanation_id: int,
    helpful: bool | None = None,
    rating: int | None = None,
    corrected_text: str | None = None,
) -> FeedbackOutcome:
    """Record (or replace) one person's verdict on an explanation; every refusal names the field."""
    explanation = Explanation.objects.select_related("item").filter(pk=explanation_id).first()
    if explanation is None:
        raise NotFound("explanation_id", f"no explanation with id {explanation_id}")
    corrected = (corrected_text or "").strip()
    if user.role == User.Role.LEARNER:
        learner = getattr(user, "learner", None)
        if (
            learner is None
            or not Attempt.objects.filter(learner=learner, item_id=explanation.item_id).exists()
        ):
            raise NotFound("explanation_id", f"no explanation with id {explanation_id}")
        if rating is not None:
            raise InvalidInput("rating", "learners answer `helpful` (yes or no); ratings are for teachers")
        if corrected:
            raise InvalidInput("corrected_text", "only teachers may correct an explanation")
        if helpful is None:
            raise InvalidInput("helpful", "required: true or false")
    else:
        if helpful is not None:
            raise InvalidInput("helpful", "teachers give a `rating` from 1 to 5 instead")
        if rating is None:
            raise InvalidInput("rating", "required: an integer from 1 to 5")
        if not 1 <= rating <= 5:
            raise InvalidInput("rating", "must be an integer from 1 to 5")
        if corrected:
            _check_correction(corrected, explanation)
    values = {"role": user.role, "helpful": helpful, "rating": rating, "corrected_text": corrected}
    with transaction.atomic():
        row, created = ExplanationFeedback.objects.update_or_create(
            explanation=explanation, user=user, defaults=values
        )
    return FeedbackOutcome(row, created)


def _check_correction(text: str, explanation: Explanation) -> None:
    """A corrected explanation becomes a positive training example, so it must state the key."""
    if len(text) > 2000:
        raise InvalidInput("corrected_text", "at most 2000 characters")
    if explanation.kind == Explanation.Kind.HINT:
        return
    spec = AnswerSpec.from_dict(explanation.item.answer)
    result = stated_result(text)
    if result is None:
        raise InvalidInput("corrected_text", "must end with a line 'Answer: <the correct answer>'")
    if not same(spec, result):
        raise InvalidInput("corrected_text", f"states {result!r}, which is not the correct answer")


# ---------------------------------------------------------------------------------------------------------------
# Outcomes: the learner's next attempt on the same skill


def _item_skills(item_ids: Iterable[int]) -> dict[int, frozenset[int]]:
    out: dict[int, set[int]] = {}
    for item_id, skill_id in Item.skills.through.objects.filter(item_id__in=set(item_ids)).values_list(
        "item_id", "skill_id"
    ):
        out.setdefault(item_id, set()).add(skill_id)
    return {k: frozenset(v) for k, v in out.items()}


def next_outcomes(
    decisions: Sequence[tuple[int, int, int]], *, through_attempt_id: int | None = None
) -> dict[int, tuple[int, bool]]:
    """For (key, learner_id, attempt_id) triples: the id and correctness of the learner's next attempt sharing a
    skill with the attempt's item, up to the cut-off; keys without one yet are left out."""
    if not decisions:
        return {}
    by_learner: dict[int, list[tuple[int, int]]] = {}
    for key, learner_id, attempt_id in decisions:
        by_learner.setdefault(learner_id, []).append((key, attempt_id))
    out: dict[int, tuple[int, bool]] = {}
    for learner_id, rows in by_learner.items():
        first = min(a for _, a in rows)
        qs = Attempt.objects.filter(learner_id=learner_id, pk__gte=first).order_by("id")
        if through_attempt_id is not None:
            qs = qs.filter(pk__lte=through_attempt_id)
        log = list(qs.values_list("id", "item_id", "correct"))
        skills = _item_skills(i for _, i, _ in log)
        item_of = {a: i for a, i, _ in log}
        for key, attempt_id in rows:
            mine = skills.get(item_of.get(attempt_id, -1), frozenset())
            for a, i, correct in log:
                if a > attempt_id and skills.get(i, frozenset()) & mine:
                    out[key] = (a, bool(correct))
                    break
    return out


# ---------------------------------------------------------------------------------------------------------------
# The style bandit


def _bandit_row(*, lock: bool) -> StyleBanditState:
    qs = StyleBanditState.objects.select_for_update() if lock else StyleBanditState.objects
    row = qs.filter(name=BANDIT).first()
    if row is None:
        try:
            with transaction.atomic():
                row = StyleBanditState.objects.create(name=BANDIT, state=StyleBandit().to_dict())
        except IntegrityError:
            row = qs.get(name=BANDIT)
    return row


def style_bandit() -> StyleBandit:
    return StyleBandit.from_dict(_bandit_row(lock=False).state)


def style_choose(*, level: str, rng: np.random.Generator | None = None) -> StyleChoice:
    """The style for one explanation, drawn from the bandit's probabilities (which are logged with it)."""
    bandit = style_bandit()
    return bandit.choose(level, rng if rng is not None else np.random.default_rng(secrets.randbits(64)))


def style_greedy(*, level: str) -> str:
    """The style with the highest posterior mean for a level (what pre-generation writes ahead)."""
    means = style_bandit().means()[level]
    return max(STYLES, key=lambda s: (means[s], -STYLES.index(s)))


def style_outcomes_fold(*, after_id: int = 0, batch: int = 500) -> tuple[int, bool, int]:
    """Fold known outcomes into the bandit, walking the unfolded decisions after `after_id` in id order; each is
    folded exactly once (it is marked in the transaction that updates the posterior). Decisions still waiting
    for the learner's next attempt are passed over and seen again on a later run. Returns (folded, has_more,
    the cursor to continue after)."""
    pending = list(
        StyleDecision.objects.filter(folded=False, pk__gt=after_id)
        .order_by("id")
        .values_list("id", "learner_id", "attempt_id")[:batch]
    )
    if not pending:
        return 0, False, after_id
    cursor = pending[-1][0]
    known = next_outcomes(pending)
    folded = 0
    if known:
        with transaction.atomic():
            row = _bandit_row(lock=True)
            bandit = StyleBandit.from_dict(row.state)
            for decision in (
                StyleDecision.objects.select_for_update()
                .filter(pk__in=list(known), folded=False)
                .order_by("id")
            ):
                attempt_id, correct = known[decision.pk]
                if decision.level in bandit.contexts and decision.style in bandit.styles:
                    bandit.update(decision.level, decision.style, 1.0 if correct else 0.0)
                decision.outcome = correct
                decision.outcome_attempt_id = attempt_id
                decision.folded = True
                decision.save(update_fields=["outcome", "outcome_attempt_id", "folded"])
                folded += 1
            row.state = bandit.to_dict()
            row.n_folded += folded
            row.save(update_fields=["state", "n_folded", "updated_at"])
    return folded, len(pending) == batch, cursor


# ---------------------------------------------------------------------------------------------------------------
# Reward models


@dataclass(frozen=True)
class TrainingSet:
    keys: list[str]  # stable row ids: the held-out split hashes them
    candidates: list[Candidate]
    labels: list[int]
    through_feedback_id: int
    through_attempt_id: int


def _candidate(explanation: Explanation, text: str | None = None) -> Candidate:
    level = explanation.level if explanation.level in LEVELS else "intermediate"
    style = explanation.style if explanation.style in STYLES else "worked_example"
    return Candidate(
        text=text or explanation.text, item_text=explanation.item.prompt, level=level, style=style
    )


def reward_training_set(
    *, through_feedback_id: int | None = None, through_attempt_id: int | None = None
) -> TrainingSet:
    """Rows (explanation text, label) from learner ratings (helpful), teacher ratings (4-5 good, 1-2 bad, 3
    left out), teacher corrections (good), and outcomes (the next attempt on the skill correct)."""
    if through_feedback_id is None:
        through_feedback_id = ExplanationFeedback.objects.aggregate(m=Max("id"))["m"] or 0
    if through_attempt_id is None:
        through_attempt_id = Attempt.objects.aggregate(m=Max("id"))["m"] or 0
    keys: list[str] = []
    cands: list[Candidate] = []
    labels: list[int] = []
    for fb in (
        ExplanationFeedback.objects.filter(pk__lte=through_feedback_id)
        .select_related("explanation__item")
        .order_by("id")
    ):
        label: int | None = None
        if fb.helpful is not None:
            label = int(fb.helpful)
        elif fb.rating is not None and fb.rating != 3:
            label = int(fb.rating >= 4)
        if label is not None:
            keys.append(f"f{fb.pk}")
            cands.append(_candidate(fb.explanation))
            labels.append(label)
        if fb.corrected_text:
            keys.append(f"c{fb.pk}")
            cands.append(_candidate(fb.explanation, fb.corrected_text))
            labels.append(1)
    decisions = list(
        StyleDecision.objects.filter(explanation__isnull=False, attempt_id__lte=through_attempt_id)
        .select_related("explanation__item")
        .order_by("id")
    )
    outcomes = next_outcomes(
        [(d.pk, d.learner_id, d.attempt_id) for d in decisions], through_attempt_id=through_attempt_id
    )
    for d in decisions:
        if d.pk in outcomes and d.explanation is not None:
            keys.append(f"d{d.pk}")
            cands.append(_candidate(d.explanation))
            labels.append(int(outcomes[d.pk][1]))
    return TrainingSet(keys, cands, labels, through_feedback_id, through_attempt_id)


def _held_out(key: str) -> bool:
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % 1000 < HOLDOUT_PER_MILLE


def _reward_bytes(model: RewardModel) -> tuple[dict[str, Any], bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "reward"
        model.save(base)
        meta = json.loads(base.with_suffix(".json").read_text())
        return meta, base.with_suffix(".npz").read_bytes()


_loaded: dict[int, RewardModel] = {}
_loaded_lock = threading.Lock()


def reward_model_load(version: RewardModelVersion) -> RewardModel:
    """The fitted model of a version, rebuilt once per process from its JSON and npz."""
    cached = _loaded.get(version.pk)
    if cached is not None:
        return cached
    with _loaded_lock, tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "reward"
        base.with_suffix(".json").write_text(json.dumps(version.meta))
        base.with_suffix(".npz").write_bytes(bytes(version.params))
        _loaded[version.pk] = RewardModel.load(base)
        return _loaded[version.pk]


@dataclass(frozen=True)
class RewardOutcome:
    version: RewardModelVersion | None
    created: bool
    activated: bool
    reason: str


def reward_model_train(
    *,
    through_feedback_id: int | None = None,
    through_attempt_id: int | None = None,
    min_rows: int = MIN_TRAINING_ROWS,
) -> RewardOutcome:
    """Train a reward model on the data up to the cut-offs; a no-op when that version exists."""
    data = reward_training_set(through_feedback_id=through_feedback_id, through_attempt_id=through_attempt_id)
    embedder = llm_embedder_name()
    name = f"logreg-{embedder or 'hashing'}"
    existing = RewardModelVersion.objects.filter(
        name=name,
        trained_through_feedback_id=data.through_feedback_id,
        trained_through_attempt_id=data.through_attempt_id,
    ).first()
    if existing is not None:
        return RewardOutcome(existing, False, existing.active, "already trained on this data")
    held = np.array([_held_out(k) for k in data.keys], dtype=bool)
    y = np.asarray(data.labels, dtype=int)
    if len(y) < min_rows:
        return RewardOutcome(None, False, False, f"not enough feedback: {len(y)} rows, {min_rows} needed")
    if len(set(y[~held].tolist())) < 2:
        return RewardOutcome(None, False, False, "the training rows have a single label")
    train = [c for c, h in zip(data.candidates, held, strict=True) if not h]
    test = [c for c, h in zip(data.candidates, held, strict=True) if h]
    model = RewardModel(embedder=embedder or None).fit(train, y[~held])
    scores: dict[str, Any] = {}
    auc: float | None = None
    if len(set(y[held].tolist())) == 2:
        scores = model.evaluate(test, y[held])
        auc = float(scores["auc"])
        model.auc_ = auc
    active = RewardModelVersion.objects.filter(active=True).first()
    active_auc: float | None = None
    if active is not None and auc is not None:
        active_auc = float(reward_model_load(active).evaluate(test, y[held])["auc"])
    better = auc is not None and auc >= MIN_AUC and (active_auc is None or auc >= active_auc)
    meta, params = _reward_bytes(model)
    metrics = {
        "holdout": scores,
        "active_on_holdout_auc": active_auc,
        "active_version": active.pk if active else None,
        "labels": {"positive": int(y.sum()), "negative": int(len(y) - y.sum())},
    }
    try:
        with transaction.atomic():
            version = RewardModelVersion.objects.create(
                name=name,
                trained_through_feedback_id=data.through_feedback_id,
                trained_through_attempt_id=data.through_attempt_id,
                n_train=int((~held).sum()),
                n_test=int(held.sum()),
                auc=auc,
                metrics=metrics,
                meta=meta,
                params=params,
            )
            if better:
                RewardModelVersion.objects.filter(active=True).update(active=False)
                RewardModelVersion.objects.filter(pk=version.pk).update(
                    active=True, activated_at=timezone.now()
                )
                version.refresh_from_db()
    except IntegrityError:
        version = RewardModelVersion.objects.get(
            name=name,
            trained_through_feedback_id=data.through_feedback_id,
            trained_through_attempt_id=data.through_attempt_id,
        )
        return RewardOutcome(version, False, version.active, "trained concurrently")
    if auc is None:
        reason = "no held-out rows of both labels: not activated"
    elif better:
        reason = f"held-out AUC {auc:.3f} beats the floor {MIN_AUC} and the active version"
    else:
        reason = (
            f"held-out AUC {auc:.3f} does not beat the floor {MIN_AUC} or the active version ({active_auc})"
        )
    return RewardOutcome(version, True, better, reason)


Scorer = Callable[[str, ItemInfo, str, str], float]


def reward_scorer() -> tuple[RewardModelVersion | None, Scorer | None, int]:
    """The active reward model as the explainer's scorer, and how many candidates to draw (best-of-n); without an
    active model, one candidate and no scorer."""
    version = RewardModelVersion.objects.filter(active=True).first()
    if version is None:
        return None, None, 1
    model = reward_model_load(version)

    def score(text: str, item: ItemInfo, level: str, style: str) -> float:
        return float(
            model.predict_proba([Candidate(text=text, item_text=item.prompt, level=level, style=style)])[0]
        )

    return version, score, int(getattr(settings, "TUTOR_LLM_BEST_OF", 3))
