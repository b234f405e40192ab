"""Items as the LLM tutor sees them, and generated item drafts from request to teacher review.

Two jobs:
- `item_info` turns an `Item` row into the pure pipeline's `ItemInfo`, including the template's list of wrong
  answers and their misconceptions when the item's template and parameters are known: stored in `ItemOrigin` for
  generated items, recovered from the item code (and verified by re-rendering) for template-built items that
  were imported, such as the demo course. Diagnosis and pre-generation read that list.
- Drafts: a teacher asks for N word problems of a skill; a Celery task writes them one at a time with
  `curriculum.generation.itemgen.ItemWriter` (the template draws the numbers and computes the key, the model only
  writes the story), stores those that pass the checks as `Item` rows with status draft and source generated, and
  counts the rest by reason. Only approved items are ever served, and approval re-derives the key from the
  template, so an approved generated item can never carry a key the model wrote.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from curriculum.generation.answers import AnswerSpec, SpecError
from curriculum.generation.itemgen import (
    THEMES,
    ItemWriter,
    default_embedder,
    ordered_numbers,
    readability_problems,
    storyable,
)
from curriculum.generation.templates import TEMPLATES, ItemTemplate, Params, templates_for_skill
from curriculum.models import Item, Skill
from curriculum.selectors import curriculum_changed
from learners.errors import Conflict, Forbidden, InvalidInput, NotFound
from learners.models import User
from tutor.llm.backends import BackendUnavailable
from tutor.llm.checks import content_problems, states_answer
from tutor.llm.explain import ItemInfo
from tutor.models import ItemDraftRequest, ItemOrigin
from tutor.services.llm import llm_backend, llm_embedder_name, llm_timeout

MAX_DRAFTS_PER_REQUEST = 20

# ---------------------------------------------------------------------------------------------------------------
# Template origin of an item


def _slug(value: int | str) -> str:
    """How `ItemTemplate.item_code` writes one parameter (verified by re-rendering, so a drift only loses data)."""
    if isinstance(value, int):
        return f"m{-value}" if value < 0 else str(value)
    return re.sub(r"[^a-z0-9]+", "", value.lower()) or "x"


@lru_cache(maxsize=64)
def _param_shape(template_code: str) -> tuple[tuple[str, ...], dict[str, dict[str, str]]] | None:
    """The parameter names of a template in drawing order, and for each string parameter the values seen in a
    few hundred draws keyed by their slug (slugs that two values share are dropped as ambiguous)."""
    template = TEMPLATES[template_code]
    rng = np.random.default_rng(0)
    names: tuple[str, ...] | None = None
    seen: dict[str, dict[str, set[str]]] = {}
    for _ in range(300):
        params = template.draw(rng)
        if names is None:
            names = tuple(params)
        elif tuple(params) != names:
            return None  # parameter names vary between draws: the code cannot be read back
        for k, v in params.items():
            if isinstance(v, str):
                seen.setdefault(k, {}).setdefault(_slug(v), set()).add(v)
    if names is None:
        return None
    vocab = {
        k: {slug: next(iter(vs)) for slug, vs in by_slug.items() if len(vs) == 1}
        for k, by_slug in seen.items()
    }
    return names, vocab


@lru_cache(maxsize=4096)
def _origin_from_code(
    code: str, prompt: str, answer_json: str
) -> tuple[str, tuple[tuple[str, Any], ...]] | None:
    template_code, sep, body = code.partition("_")
    if not sep or template_code not in TEMPLATES:
        return None
    shape = _param_shape(template_code)
    if shape is None:
        return None
    names, vocab = shape
    parts = body.split("-")
    if len(parts) != len(names):
        return None
    params: Params = {}
    for name, part in zip(names, parts, strict=True):
        if name in vocab:
            if part not in vocab[name]:
                return None
            params[name] = vocab[name][part]
        else:
            m = re.fullmatch(r"(m?)(\d+)", part)
            if m is None:
                return None
            params[name] = -int(m.group(2)) if m.group(1) else int(m.group(2))
    try:
        rendered = TEMPLATES[template_code].render(params)
    except (ValueError, KeyError, TypeError, ZeroDivisionError):
        return None
    if (
        rendered.code != code
        or rendered.prompt != prompt
        or json.dumps(rendered.answer.to_dict(), sort_keys=True) != answer_json
    ):
        return None
    return template_code, tuple(params.items())


def item_template_origin(*, item: Item) -> tuple[ItemTemplate, Params] | None:
    """The template and parameters an item was rendered from, when they are known or can be proved."""
    if item.source == Item.Source.GENERATED:
        origin = ItemOrigin.objects.filter(item=item).first()
        if origin is not None and origin.template in TEMPLATES:
            return TEMPLATES[origin.template], dict(origin.params)
        return None
    found = _origin_from_code(item.code, item.prompt, json.dumps(item.answer, sort_keys=True))
    if found is None:
        return None
    return TEMPLATES[found[0]], dict(found[1])


_info_cache: dict[int, tuple[datetime, ItemInfo]] = {}
_info_lock = threading.Lock()


def item_info(*, item: Item) -> ItemInfo:
    """The pure pipeline's view of an item, cached per process until the row changes."""
    cached = _info_cache.get(item.pk)
    if cached is not None and cached[0] == item.updated_at:
        return cached[1]
    origin = item_template_origin(item=item)
    known = tuple(origin[0].wrong_answers(origin[1])) if origin is not None else ()
    info = ItemInfo(
        code=item.code,
        prompt=item.prompt,
        answer=AnswerSpec.from_dict(item.answer),
        solution=item.solution,
        skills=tuple(item.skills.order_by("id").values_list("code", flat=True)),
        known_wrong=known,
    )
    with _info_lock:
        if len(_info_cache) > 20_000:
            _info_cache.clear()
        _info_cache[item.pk] = (item.updated_at, info)
    return info


# ---------------------------------------------------------------------------------------------------------------
# Drafts


def _require_teacher(user: User) -> None:
    if user.role not in (User.Role.TEACHER, User.Role.ADMIN) and not user.is_superuser:
        raise Forbidden("role", "only teachers and admins may generate, review or edit items")


def story_templates(*, skill_code: str) -> list[ItemTemplate]:
    """The templates of a skill that can carry a word problem, in registry order (deterministic)."""
    out = []
    for template in templates_for_skill(skill_code):
        probe = np.random.default_rng(0)
        if any(storyable(template, template.draw(probe)) for _ in range(5)):
            out.append(template)
    return out


def draft_request_create(*, user: User, skill_code: str, count: int) -> ItemDraftRequest:
    """Record the request and queue its generation on the `llm` queue after commit."""
    _require_teacher(user)
    if not 1 <= count <= MAX_DRAFTS_PER_REQUEST:
        raise InvalidInput("count", f"must be between 1 and {MAX_DRAFTS_PER_REQUEST}")
    skill = Skill.objects.filter(code=skill_code).first()
    if skill is None:
        raise NotFound("skill", f"no skill with code {skill_code!r}")
    backend = llm_backend()
    if backend is None:
        raise Conflict("backend", "LLM features are off (TUTOR_LLM_BACKEND=off): items cannot be generated")
    if not story_templates(skill_code=skill.code):
        raise InvalidInput("skill", f"no template of skill {skill.code!r} supports word problems")
    from tasks.llm import generate_item_drafts

    with transaction.atomic():
        req = ItemDraftRequest.objects.create(
            skill=skill, count=count, requested_by=user, backend_version=backend.version
        )
        generate_item_drafts.delay_on_commit(request_id=req.pk)  # type: ignore[attr-defined]  # DjangoTask
    return req


@dataclass(frozen=True)
class Batch:
    """What one bounded run of a task did: `done` units of work, and whether any remain."""

    done: int
    has_more: bool
    info: dict[str, Any]


def _draw_params(template: ItemTemplate, rng: np.random.Generator) -> Params | None:
    for _ in range(20):
        params = template.draw(rng)
        if storyable(template, params):
            return params
    return None


def draft_generate(*, request_id: int, batch: int = 2) -> Batch:
    """Write the next `batch` drafts of a request. Draft i is drawn from a generator seeded by (request, i), so a
    re-run writes the same draft; the request row is locked while a draft is stored and `next_index` moves on in
    the same transaction, so nothing is written twice. A backend failure stops the batch without moving on
    (`BackendUnavailable` for the task to retry); a draft that fails its checks is counted, never stored."""
    req = ItemDraftRequest.objects.select_related("skill").filter(pk=request_id).first()
    if req is None or req.next_index >= req.count:
        return Batch(0, False, {"reason": "nothing to do"})
    backend = llm_backend()
    if backend is None:
        return Batch(0, False, {"reason": "LLM features are off"})
    pool = story_templates(skill_code=req.skill.code)
    if not pool:
        return Batch(0, False, {"reason": "no story template"})
    existing = list(
        Item.objects.filter(skills=req.skill)
        .exclude(status=Item.Status.REJECTED)
        .values_list("prompt", flat=True)
    )
    writer = ItemWriter(
        backend, embedder=default_embedder(llm_embedder_name()), existing=existing, timeout=llm_timeout()
    )
    done = 0
    index = req.next_index
    while done < batch and index < req.count:
        rng = np.random.default_rng([req.pk, index])
        template = pool[index % len(pool)]
        params = _draw_params(template, rng)
        draft = None
        if params is not None:
            theme = THEMES[int(rng.integers(len(THEMES)))]
            draft = writer.draft(template, params, theme=theme, seed=int(rng.integers(1 << 30)))
            if "backend_error" in draft.reasons:
                raise BackendUnavailable(f"draft {index} of request {req.pk}: the backend failed")
        with transaction.atomic():
            locked = ItemDraftRequest.objects.select_for_update().get(pk=req.pk)
            if locked.next_index == index:
                reasons = ["no_parameters"] if draft is None else list(draft.reasons)
                if draft is not None and draft.passed and draft.item is not None:
                    stored = _store_draft(locked, index, template, draft)
                    if not stored:
                        reasons = ["duplicate_code"]
                if reasons:
                    locked.n_failed += 1
                    counts = Counter(locked.reasons)
                    counts.update(reasons)
                    locked.reasons = dict(counts)
                else:
                    locked.n_passed += 1
                locked.next_index = index + 1
                locked.status = (
                    ItemDraftRequest.Status.DONE
                    if locked.next_index >= locked.count
                    else ItemDraftRequest.Status.RUNNING
                )
                locked.save()
                done += 1
            index = locked.next_index
    req.refresh_from_db()
    return Batch(done, req.next_index < req.count, {"passed": req.n_passed, "failed": req.n_failed})


def _store_draft(req: ItemDraftRequest, index: int, template: ItemTemplate, draft: Any) -> bool:
    gen = draft.item
    skills = list(Skill.objects.filter(code__in=gen.skills))
    try:
        with transaction.atomic():
            item = Item.objects.create(
                code=gen.code,
                prompt=gen.prompt,
                answer=gen.answer.to_dict(),
                difficulty=gen.difficulty,
                solution=gen.solution,
                status=Item.Status.DRAFT,
                source=Item.Source.GENERATED,
            )
    except IntegrityError:
        return False
    item.skills.set(skills)
    completion = draft.completion
    ItemOrigin.objects.create(
        item=item,
        template=template.code,
        params=dict(draft.params),
        story=draft.story,
        request=req,
        index=index,
        checks={"passed": True, "reasons": []},
        backend_version=draft.backend,
        completion_tokens=completion.completion_tokens if completion else 0,
        latency_ms=1000 * completion.latency_s if completion else 0.0,
    )
    return True


def drafts_list(*, user: User, status: str | None = "draft", skill_code: str | None = None) -> QuerySet[Item]:
    _require_teacher(user)
    qs = Item.objects.filter(source=Item.Source.GENERATED).select_related("origin").prefetch_related("skills")
    if status:
        if status not in Item.Status.values:
            raise InvalidInput("status", f"must be one of {', '.join(Item.Status.values)}")
        qs = qs.filter(status=status)
    if skill_code:
        qs = qs.filter(skills__code=skill_code)
    return qs.order_by("id")


def story_problems(*, template: ItemTemplate, params: Params, prompt: str) -> list[str]:
    """The checks an edited generated prompt must still pass: the template's numbers, present and no others (the
    key is computed from them), no stated result, readable, clean."""
    numbers = ordered_numbers(template, params)
    reasons: list[str] = []
    for n in numbers:
        if not re.search(r"(?<![\d,./])" + re.escape(n) + r"(?![\d/]|[.,]\d)", prompt):
            reasons.append("missing_number")
            break
    allowed = {n.replace(" ", "") for n in numbers}
    found = re.findall(r"\d+(?:[,.]\d+)*(?:\s*/\s*\d+)?(?:\s+\d+/\d+)?", prompt)
    if any(x.replace(" ", "") not in allowed for x in found):
        reasons.append("extra_number")
    key = template.render(dict(params)).answer
    if key.value not in numbers and states_answer(prompt, key, " ".join(numbers)):
        reasons.append("states_answer")
    reasons += readability_problems(prompt)
    reasons += content_problems(prompt)
    return reasons


def _item_for_review(item_id: int) -> Item:
    item = Item.objects.select_for_update().filter(pk=item_id).first()
    if item is None:
        raise NotFound("item_id", f"no item with id {item_id}")
    return item


def item_review(*, user: User, item_id: int, approve: bool) -> Item:
    """Approve or reject a draft. Approving a generated item re-renders its template and refuses the item unless
    the stored key equals the template's and its last checks passed."""
    _require_teacher(user)
    with transaction.atomic():
        item = _item_for_review(item_id)
        if item.status != Item.Status.DRAFT:
            raise Conflict("item_id", f"item {item_id} is {item.status}, not a draft")
        origin = ItemOrigin.objects.filter(item=item).first()
        if approve and item.source == Item.Source.GENERATED:
            if origin is None or origin.template not in TEMPLATES:
                raise Conflict("item_id", f"item {item_id} has no known template: its key cannot be verified")
            key = TEMPLATES[origin.template].render(dict(origin.params)).answer
            if AnswerSpec.from_dict(item.answer) != key:
                raise Conflict(
                    "answer", f"item {item_id}'s key differs from its template's; it cannot be approved"
                )
            if not origin.checks.get("passed", False):
                reasons = ", ".join(origin.checks.get("reasons", []))
                raise Conflict("prompt", f"item {item_id} fails its checks ({reasons}); edit it first")
        item.status = Item.Status.APPROVED if approve else Item.Status.REJECTED
        item.save(update_fields=["status", "updated_at"])
        curriculum_changed()
        if origin is not None:
            origin.reviewed_by = user
            origin.reviewed_at = timezone.now()
            origin.save(update_fields=["reviewed_by", "reviewed_at"])
        backend = llm_backend()
        if approve and backend is not None and backend.name != "template":
            from tasks.llm import pregenerate_explanations

            # A newly served item gets its common wrong answers written ahead, like the rest of the course.
            pregenerate_explanations.delay_on_commit(item_id=item.pk)  # type: ignore[attr-defined]
    return item


def item_edit(
    *,
    user: User,
    item_id: int,
    prompt: str | None = None,
    solution: str | None = None,
    answer: dict[str, Any] | None = None,
) -> Item:
    """Edit the wording of an item. A generated item keeps its template's key: its answer cannot be edited and an
    edited prompt must pass the story checks again (a draft records the result and cannot be approved while it
    fails; an approved item refuses the edit). Imported items are edited by admins only."""
    _require_teacher(user)
    if prompt is not None and not prompt.strip():
        raise InvalidInput("prompt", "must not be empty")
    with transaction.atomic():
        item = _item_for_review(item_id)
        if item.status == Item.Status.REJECTED:
            raise Conflict("item_id", f"item {item_id} was rejected; it cannot be edited")
        if item.source != Item.Source.GENERATED and user.role != User.Role.ADMIN and not user.is_superuser:
            # Nothing re-derives the key of an imported item from its numbers: only curriculum admins edit those.
            raise Forbidden("item_id", "teachers edit generated items; imported items are edited by admins")
        fields = ["updated_at"]
        if answer is not None:
            if item.source == Item.Source.GENERATED:
                raise InvalidInput(
                    "answer", "the answer key of a generated item is its template's and cannot be edited"
                )
            try:
                item.answer = AnswerSpec.from_dict(answer).to_dict()
            except SpecError as exc:
                raise InvalidInput("answer", "; ".join(exc.problems)) from None
            fields.append("answer")
        if prompt is not None:
            prompt = prompt.strip()
            if item.source == Item.Source.GENERATED:
                origin = ItemOrigin.objects.filter(item=item).first()
                if origin is None or origin.template not in TEMPLATES:
                    raise Conflict("item_id", f"item {item_id} has no known template")
                reasons = story_problems(
                    template=TEMPLATES[origin.template], params=dict(origin.params), prompt=prompt
                )
                if reasons and item.status == Item.Status.APPROVED:
                    raise InvalidInput("prompt", f"the edited prompt fails the checks: {', '.join(reasons)}")
                origin.checks = {"passed": not reasons, "reasons": reasons, "edited_by": user.pk}
                origin.save(update_fields=["checks"])
            item.prompt = prompt
            fields.append("prompt")
        if solution is not None:
            item.solution = solution.strip()
            fields.append("solution")
        item.save(update_fields=fields)
        curriculum_changed()
    return item


def draft_request_get(*, user: User, request_id: int) -> ItemDraftRequest:
    _require_teacher(user)
    req = ItemDraftRequest.objects.select_related("skill").filter(pk=request_id).first()
    if req is None:
        raise NotFound("request_id", f"no draft request {request_id}")
    return req


def item_skill_codes(items: Sequence[Item]) -> dict[int, list[str]]:
    return {i.pk: sorted(s.code for s in i.skills.all()) for i in items}
