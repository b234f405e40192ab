"""Explanations and hints: cached, checked, and never a model call on a learner's request path unless the
learner asked to wait for one (the streamed explanation).

- The cache key is the pure `explanation_cache_key` (item content, diagnosis, level, style, kind, prompt and
  backend versions). The diagnosis part also carries the normalised response, because the text echoes it ("You
  answered 2/5, ..."): two wrong answers with the same misconception code must not share a text.
- The fast path (`explanation_brief`, called while an attempt is recorded, and the JSON endpoints) reads a cached
  model explanation under the configured backend's key, or else the template explanation, stored once under the
  template backend's key so that it has an id feedback can refer to. Both take a few milliseconds.
- The slow path (`explanation_events`, behind `?stream=1`, and the pre-generation task) asks the configured backend
  through `tutor.llm.explain.Explainer`, which checks every candidate and falls back to the template text. Only
  text that passed the checks is stored.
- The level comes from the learner's mastery of the item's skills as the attempt left it (stored in the attempt's
  result, so asking again later gives the same level); the style from the bandit (`StyleDecision`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count

from curriculum.models import Item
from learners.errors import InvalidInput, NotFound
from learners.models import Attempt, Learner, SkillMastery, User
from tutor.llm.backends import BackendUnavailable, LLMBackend
from tutor.llm.backends.template import TemplateBackend
from tutor.llm.diagnose import Diagnosis, diagnose
from tutor.llm.explain import Explainer, ItemInfo, common_wrong_answers, explanation_cache_key
from tutor.llm.explain import Explanation as Written
from tutor.llm.prompts import LEVELS, level_for_mastery
from tutor.models import Explanation, RewardModelVersion, StyleDecision
from tutor.services.feedback import reward_scorer, style_choose, style_greedy
from tutor.services.items import Batch, item_info
from tutor.services.llm import llm_backend, llm_timeout

TEMPLATE = TemplateBackend()
HINT_STYLE = "short_hint"
TRANSIENT = {"backend_error", "timeout"}
COMMON_WRONG = 5  # wrong answers pre-generated per item


def _norm(response: str) -> str:
    return " ".join(response.split())[:100]


@dataclass(frozen=True)
class Case:
    """One explanation request: what the cache key and the pipeline need."""

    item: Item
    info: ItemInfo
    kind: str
    response: str | None
    diagnosis: Diagnosis
    level: str
    style: str

    def key(self, backend_version: str) -> str:
        diag = "hint" if self.response is None else f"{self.diagnosis.code}:{_norm(self.response)}"
        return explanation_cache_key(
            item=self.info,
            diagnosis=diag,
            level=self.level,
            backend_version=backend_version,
            kind=self.kind,
            style=self.style,
        )


def _version(backend: LLMBackend | None) -> str:
    return backend.version if backend is not None else "off"


def make_case(*, item: Item, response: str | None, level: str, style: str) -> Case:
    info = item_info(item=item)
    if response is None:
        diag = diagnose(answer_type="none", key="", response="")
        kind = Explanation.Kind.HINT
    else:
        diag = Explainer(None).diagnose(info, response)
        kind = Explanation.Kind.EXPLANATION
    return Case(item, info, str(kind), response, diag, level, style)


def level_of(mastery: Sequence[float]) -> str:
    """The explanation level for the learner's mastery of the item's skills (their mean)."""
    return level_for_mastery(sum(mastery) / len(mastery)) if mastery else "beginner"


def _store(
    case: Case,
    written: Written,
    backend_version: str,
    reward: RewardModelVersion | None = None,
    reward_score: float | None = None,
    checks_failed: Sequence[str] = (),
) -> Explanation:
    key = case.key(backend_version)
    defaults = {
        "item": case.item,
        "kind": case.kind,
        "misconception": case.diagnosis.code,
        "diagnosis": case.diagnosis.text if case.response is not None else "",
        "response": _norm(case.response or ""),
        "level": case.level,
        "style": case.style,
        "backend_version": backend_version,
        "source": written.source,
        "text": written.text,
        "stated_result": written.stated_result or "",
        "checks_passed": True,
        "checks_failed": [*written.rejected, *checks_failed],
        "n_candidates": len(written.completions),
        "prompt_tokens": written.prompt_tokens,
        "completion_tokens": written.completion_tokens,
        "latency_ms": 1000 * written.latency_s,
        "reward_model": reward,
        "reward_score": reward_score,
    }
    try:
        with transaction.atomic():
            row, _ = Explanation.objects.get_or_create(cache_key=key, defaults=defaults)
    except IntegrityError:  # written concurrently: the first one stays
        row = Explanation.objects.get(cache_key=key)
    return row


def explanation_template(case: Case) -> tuple[Explanation, bool]:
    """The template explanation (or hint) of a case, stored once; returns (row, existed)."""
    key = case.key(TEMPLATE.version)
    row = next(iter(Explanation.objects.filter(cache_key=key)[:1]), None)
    if row is not None:
        return row, True
    explainer = Explainer(TEMPLATE)
    written = _write(explainer, case)
    failed = ["template_failed_checks"] if explainer.stats.rejected.get("template_failed_checks") else []
    return _store(case, written, TEMPLATE.version, checks_failed=failed), False


def _write(explainer: Explainer, case: Case) -> Written:
    if case.response is None:
        return explainer.hint(case.info, level=case.level, style=case.style)
    return explainer.explain(case.info, case.response, level=case.level, style=case.style)


def explanation_cached(case: Case, backend: LLMBackend | None = None) -> Explanation | None:
    """The stored explanation of the configured backend for a case, if any."""
    backend = backend if backend is not None else llm_backend()
    if backend is None:
        return None
    return next(iter(Explanation.objects.filter(cache_key=case.key(backend.version))[:1]), None)


def explanation_fast(case: Case) -> tuple[Explanation, bool]:
    """A cached model explanation or else the template's: never a model call. Returns (row, was cached)."""
    backend = llm_backend()
    if backend is not None and backend.name != "template":
        row = explanation_cached(case, backend)
        if row is not None:
            return row, True
    return explanation_template(case)


def _model_backend() -> LLMBackend | None:
    """The configured backend when it is a model (template and off need no generation)."""
    backend = llm_backend()
    return backend if backend is not None and backend.name != "template" else None


def explanation_generate(case: Case) -> tuple[Explanation, Written]:
    """Ask the configured model (best-of-n when a reward model is active) and store the text only if it passed
    the checks; otherwise the template row is returned with the refused `Written` for the caller to report."""
    backend = _model_backend()
    if backend is None:
        row, _ = explanation_template(case)
        return row, _written_from_row(row, case)
    reward, scorer, n = reward_scorer()
    explainer = Explainer(backend, n_samples=n, scorer=scorer, timeout=llm_timeout())
    written = _write(explainer, case)
    if written.source == "model":
        score = scorer(written.text, case.info, case.level, case.style) if scorer is not None else None
        return _store(case, written, backend.version, reward, score), written
    row, _ = explanation_template(case)
    return row, written


def _written_from_row(row: Explanation, case: Case) -> Written:
    return Written(
        text=row.text,
        kind=row.kind,
        source=row.source,
        diagnosis=case.diagnosis,
        level=row.level,
        style=row.style,
        backend_version=row.backend_version,
        cache_key=row.cache_key,
        stated_result=row.stated_result or None,
    )


def explanation_out(row: Explanation, *, cached: bool, stream_url: str | None = None) -> dict[str, Any]:
    """What the API shows of an explanation."""
    return {
        "id": row.pk,
        "item_id": row.item_id,
        "kind": row.kind,
        "text": row.text,
        "source": row.source,
        "cached": cached,
        "misconception": row.misconception,
        "diagnosis": row.diagnosis,
        "level": row.level,
        "style": row.style,
        "backend_version": row.backend_version,
        "checks_passed": row.checks_passed,
        "stream_url": stream_url,
    }


# ---------------------------------------------------------------------------------------------------------------
# Attempts


def stream_url(attempt_id: int) -> str:
    return f"/api/v1/attempts/{attempt_id}/explanation?stream=1"


def explanation_brief(*, attempt: Attempt, item: Item, mastery: Sequence[float]) -> dict[str, Any]:
    """The explanation object of a wrong answer's result, built while the attempt is recorded: the level from the
    mastery the attempt left, a style from the bandit (logged with its propensity), and a cached or template
    text. `stream_url` is set when a model could write a fresher one."""
    level = level_of(mastery)
    choice = style_choose(level=level)
    case = make_case(item=item, response=attempt.response, level=level, style=choice.style)
    row, cached = explanation_fast(case)
    StyleDecision.objects.create(
        attempt=attempt,
        learner_id=attempt.learner_id,
        explanation=row,
        level=level,
        style=choice.style,
        propensity=choice.propensity,
        probabilities={k: round(v, 6) for k, v in choice.probabilities.items()},
    )
    fresher = _model_backend() is not None and row.source != Explanation.Source.MODEL
    return {
        "id": row.pk,
        "text": row.text,
        "source": row.source,
        "cached": cached,
        "level": level,
        "style": choice.style,
        "misconception": row.misconception,
        "stream_url": stream_url(attempt.pk) if fresher else None,
    }


def attempt_for_explanation(*, user: User, attempt_id: int) -> Attempt:
    """The wrong attempt to explain, if the caller may see it: the learner themself, a teacher of one of their
    classes, or an admin (anyone else is told it does not exist)."""
    attempt = (
        Attempt.objects.select_related("item", "learner", "style_decision").filter(pk=attempt_id).first()
    )
    if attempt is None or not _may_see(user, attempt.learner):
        raise NotFound("attempt_id", f"no attempt with id {attempt_id}")
    if attempt.correct:
        raise InvalidInput("attempt_id", f"attempt {attempt_id} was correct: there is nothing to explain")
    return attempt


def _may_see(user: User, learner: Learner) -> bool:
    if user.role == User.Role.ADMIN or user.is_superuser:
        return True
    if learner.user_id == user.pk:
        return True
    return user.role == User.Role.TEACHER and learner.classrooms.filter(teachers=user).exists()


def attempt_case(*, attempt: Attempt) -> Case:
    """The case of an attempt: the level its result recorded and the style the bandit chose for it (chosen now,
    and logged, for attempts recorded before explanations existed)."""
    mastery = [float(m["p_mastery"]) for m in (attempt.result or {}).get("mastery", [])]
    if not mastery:
        skills = list(attempt.item.skills.values_list("pk", flat=True))
        mastery = list(
            SkillMastery.objects.filter(learner_id=attempt.learner_id, skill_id__in=skills).values_list(
                "p_mastery", flat=True
            )
        )
    level = level_of(mastery)
    try:
        decision: StyleDecision | None = attempt.style_decision  # joined by attempt_for_explanation
    except StyleDecision.DoesNotExist:
        decision = None
    if decision is None:
        choice = style_choose(level=level)
        try:
            with transaction.atomic():
                decision = StyleDecision.objects.create(
                    attempt=attempt,
                    learner_id=attempt.learner_id,
                    level=level,
                    style=choice.style,
                    propensity=choice.propensity,
                    probabilities={k: round(v, 6) for k, v in choice.probabilities.items()},
                )
        except IntegrityError:
            decision = StyleDecision.objects.get(attempt=attempt)
    return make_case(item=attempt.item, response=attempt.response, level=decision.level, style=decision.style)


def explanation_for_attempt(*, attempt: Attempt) -> dict[str, Any]:
    """The JSON answer: a cached explanation at once, else the template's with the URL that streams a fresh one."""
    case = attempt_case(attempt=attempt)
    row, cached = explanation_fast(case)
    fresher = _model_backend() is not None and row.source != Explanation.Source.MODEL
    return explanation_out(row, cached=cached, stream_url=stream_url(attempt.pk) if fresher else None)


def explanation_events(*, attempt: Attempt) -> Iterator[dict[str, Any]]:
    """Server-sent events for an attempt: `start` at once, `delta` per line of the checked text, then `done` with
    the stored row (a cached one is replayed the same way). Unchecked model text is never sent."""
    case = attempt_case(attempt=attempt)
    backend = _model_backend()
    cached = explanation_cached(case, backend) if backend is not None else None
    if backend is None or cached is not None:
        row, existed = (cached, True) if cached is not None else explanation_template(case)
        yield {"event": "start", "backend": row.backend_version, "cached": existed}
        for line in row.text.splitlines(keepends=True):
            yield {"event": "delta", "text": line}
        yield {"event": "done", **explanation_out(row, cached=existed), "stored": existed, "rejected": []}
        return
    yield {"event": "start", "backend": backend.version, "cached": False}
    t0 = time.perf_counter()
    row, written = explanation_generate(case)
    for line in written.text.splitlines(keepends=True):
        yield {"event": "delta", "text": line}
    stored = written.source == "model"
    done = explanation_out(row, cached=False)
    yield {
        "event": "done",
        **done,
        "stored": stored,
        "rejected": list(written.rejected),
        "prompt_tokens": written.prompt_tokens,
        "completion_tokens": written.completion_tokens,
        "latency_ms": round(1000 * (time.perf_counter() - t0), 1),
    }


# ---------------------------------------------------------------------------------------------------------------
# Hints


def hint_level(*, learner: Learner | None, item: Item) -> str:
    if learner is None:
        return "intermediate"
    skills = list(item.skills.values_list("pk", flat=True))
    found = dict(
        SkillMastery.objects.filter(learner=learner, skill_id__in=skills).values_list("skill_id", "p_mastery")
    )
    return level_of([found.get(s, 0.0) for s in skills])


def hint_for_item(*, item: Item, level: str) -> dict[str, Any]:
    """A hint before any attempt: a cached model hint or the template's; both passed the no-answer check."""
    if item.status != Item.Status.APPROVED:
        raise NotFound("item_id", f"no item with id {item.pk}")
    case = make_case(item=item, response=None, level=level, style=HINT_STYLE)
    row, cached = explanation_fast(case)
    return explanation_out(row, cached=cached)


# ---------------------------------------------------------------------------------------------------------------
# Pre-generation


def common_responses(*, item: Item, info: ItemInfo, limit: int = COMMON_WRONG) -> list[str]:
    """The wrong answers worth writing ahead: the template's misconceptions first, then the most frequent wrong
    responses in the attempt log (given at least twice)."""
    out = list(common_wrong_answers(info, limit=limit))
    seen = {_norm(r) for r in out}
    logged = (
        Attempt.objects.filter(item=item, correct=False)
        .values("response")
        .annotate(n=Count("id"))
        .filter(n__gte=2)
        .order_by("-n", "response")[: limit * 2]
    )
    for row in logged:
        if len(out) >= limit:
            break
        if _norm(row["response"]) not in seen:
            out.append(row["response"])
            seen.add(_norm(row["response"]))
    return out[:limit]


def explanations_pregenerate(*, after_item_id: int = 0, item_id: int | None = None, batch: int = 5) -> Batch:
    """Write ahead the explanations of the common wrong answers (each level, with the bandit's favourite style)
    and the hints of up to `batch` approved items after `after_item_id`. Cached cases are skipped, so a re-run
    writes nothing new; a backend failure raises `BackendUnavailable` (the task retries) after keeping what was
    written; a candidate that fails the checks is counted and not stored."""
    backend = _model_backend()
    qs = Item.objects.filter(status=Item.Status.APPROVED).order_by("id")
    qs = qs.filter(pk=item_id) if item_id is not None else qs.filter(pk__gt=after_item_id)
    items = list(qs[:batch])
    counts: Counter[str] = Counter()
    styles = {lv: style_greedy(level=lv) for lv in LEVELS}
    transient = 0
    for item in items:
        info = item_info(item=item)
        responses: list[str | None] = [*common_responses(item=item, info=info), None]
        for response in responses:
            for level in LEVELS:
                style = HINT_STYLE if response is None else styles[level]
                case = make_case(item=item, response=response, level=level, style=style)
                if backend is None:
                    _, existed = explanation_template(case)
                    counts["cached" if existed else "template"] += 1
                    continue
                if explanation_cached(case, backend) is not None:
                    counts["cached"] += 1
                    continue
                _, written = explanation_generate(case)
                if written.source == "model":
                    counts["stored"] += 1
                elif TRANSIENT & set(written.rejected):
                    transient += 1
                else:
                    counts["failed_checks"] += 1
    if transient:
        raise BackendUnavailable(f"{transient} explanations could not be generated: the backend failed")
    last = items[-1].pk if items else after_item_id
    has_more = (
        item_id is None
        and len(items) == batch
        and qs.model.objects.filter(status=Item.Status.APPROVED, pk__gt=last).exists()
    )
    return Batch(len(items), has_more, {"next_after": last, **counts})
