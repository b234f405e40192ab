"""Models of the LLM tutor: cached explanations, feedback on them, the style bandit's decision log, reward model
versions, teacher goals, and where generated items came from.

The rows hold data and constraints only; the workflows are in `tutor.services.{explanations,feedback,goals,items}`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Explanation(models.Model):
    """A checked explanation (after a wrong answer) or hint (before any attempt), cached by the pure key.

    The key (`tutor.llm.explain.explanation_cache_key`) covers the item's content hash, the diagnosis, the level,
    the style, the kind, the prompt version and the backend version, so editing an item or switching the model
    never serves stale text. Only text that passed the checks is stored; `checks_failed` lists why the model's
    other candidates (best-of-n, self-consistency) were refused on the way.
    """

    class Kind(models.TextChoices):
        EXPLANATION = "explanation"
        HINT = "hint"

    class Source(models.TextChoices):
        MODEL = "model"
        TEMPLATE = "template"

    cache_key = models.CharField(max_length=64, unique=True)
    item = models.ForeignKey("curriculum.Item", on_delete=models.CASCADE, related_name="explanations")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    misconception = models.CharField(max_length=64)
    diagnosis = models.TextField(blank=True)
    # The wrong answer the text was written for (the key includes it: template text echoes the response).
    response = models.CharField(max_length=200, blank=True)
    level = models.CharField(max_length=16)
    style = models.CharField(max_length=32)
    backend_version = models.CharField(max_length=300)
    source = models.CharField(max_length=16, choices=Source.choices)
    text = models.TextField()
    stated_result = models.CharField(max_length=200, blank=True)
    checks_passed = models.BooleanField(default=True)
    checks_failed = models.JSONField(default=list)  # reason codes of refused candidates
    n_candidates = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(default=0.0)
    reward_model = models.ForeignKey(
        "tutor.RewardModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reward_score = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["item", "kind"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.pk} for item {self.item_id} ({self.source}, {self.level}, {self.style})"


class ExplanationFeedback(models.Model):
    """One person's verdict on one explanation: a learner's helpful yes/no, or a teacher's 1-5 rating with an
    optional corrected text. Giving feedback again replaces the earlier verdict (unique per person)."""

    explanation = models.ForeignKey(Explanation, on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=16)
    helpful = models.BooleanField(null=True, blank=True)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    corrected_text = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["explanation", "user"], name="one_feedback_per_user"),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | (Q(rating__gte=1) & Q(rating__lte=5)), name="rating_1_to_5"
            ),
            models.CheckConstraint(
                condition=Q(helpful__isnull=False) | Q(rating__isnull=False), name="feedback_says_something"
            ),
        ]

    def __str__(self) -> str:
        return f"feedback {self.pk} on explanation {self.explanation_id} by {self.user_id}"


class StyleDecision(models.Model):
    """The explanation style chosen for one wrong answer, with the probability of every style (off-policy
    evaluation needs the propensities). `outcome` is whether the learner's next attempt on the same skill was
    correct; `folded` says whether the bandit has learned from it."""

    attempt = models.OneToOneField(
        "learners.Attempt", on_delete=models.CASCADE, related_name="style_decision"
    )
    learner = models.ForeignKey("learners.Learner", on_delete=models.CASCADE, related_name="+")
    explanation = models.ForeignKey(
        Explanation, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions"
    )
    level = models.CharField(max_length=16)
    style = models.CharField(max_length=32)
    propensity = models.FloatField()
    probabilities = models.JSONField(default=dict)
    outcome = models.BooleanField(null=True, blank=True)
    outcome_attempt_id = models.BigIntegerField(null=True, blank=True)
    folded = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(propensity__gt=0) & Q(propensity__lte=1), name="style_propensity_is_probability"
            )
        ]
        indexes = [models.Index(fields=["folded", "id"])]

    def __str__(self) -> str:
        return f"style {self.style} for attempt {self.attempt_id} (p={self.propensity:.3f})"


class StyleBanditState(models.Model):
    """The bandit's posterior (`StyleBandit.to_dict()`): one row per name, updated under a row lock."""

    name = models.CharField(max_length=64, unique=True)
    state = models.JSONField()
    n_folded = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"style bandit {self.name} ({self.n_folded} outcomes)"


class RewardModelVersion(models.Model):
    """A fitted reward model: the JSON description and the npz arrays `RewardModel.save` writes, never a pickle.

    Unique on the cut-offs of the data it was trained on, so the training task is idempotent."""

    name = models.CharField(max_length=64)
    trained_through_feedback_id = models.BigIntegerField(default=0)
    trained_through_attempt_id = models.BigIntegerField(default=0)
    n_train = models.PositiveIntegerField(default=0)
    n_test = models.PositiveIntegerField(default=0)
    auc = models.FloatField(null=True, blank=True)  # held out
    metrics = models.JSONField(default=dict)
    meta = models.JSONField(default=dict)
    params = models.BinaryField()
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["name", "trained_through_feedback_id", "trained_through_attempt_id"],
                name="reward_model_version_unique",
            ),
            models.UniqueConstraint(
                fields=["active"], condition=Q(active=True), name="one_active_reward_model"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.trained_through_feedback_id}/{self.trained_through_attempt_id}"


class Goal(models.Model):
    """A teacher's goal in plain language for a classroom or one learner, mapped to target skills and a date.

    The mapping is a proposal until the teacher confirms it; only confirmed goals that are not past their date
    steer the scheduler."""

    class Status(models.TextChoices):
        PROPOSED = "proposed"
        CONFIRMED = "confirmed"

    text = models.TextField()
    classroom = models.ForeignKey(
        "learners.Classroom", null=True, blank=True, on_delete=models.CASCADE, related_name="goals"
    )
    learner = models.ForeignKey(
        "learners.Learner", null=True, blank=True, on_delete=models.CASCADE, related_name="goals"
    )
    targets = models.ManyToManyField("curriculum.Skill", related_name="+", blank=True)
    due = models.DateField(null=True, blank=True)
    due_text = models.CharField(max_length=100, blank=True)
    mapping = models.JSONField(
        default=dict
    )  # GoalMapping.as_dict(): method, shortlist scores, rejected codes
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROPOSED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(classroom__isnull=False, learner__isnull=True)
                | Q(classroom__isnull=True, learner__isnull=False),
                name="goal_for_classroom_or_learner",
            )
        ]
        indexes = [models.Index(fields=["status", "due"])]

    def __str__(self) -> str:
        return f"goal {self.pk} ({self.status}): {self.text[:40]}"


class ItemDraftRequest(models.Model):
    """A teacher's request for `count` generated drafts of one skill; the task advances `next_index` one draft at
    a time under a row lock, so a re-run or a second worker never writes a draft twice."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"

    skill = models.ForeignKey("curriculum.Skill", on_delete=models.CASCADE, related_name="+")
    count = models.PositiveSmallIntegerField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    backend_version = models.CharField(max_length=300, blank=True)
    next_index = models.PositiveSmallIntegerField(default=0)
    n_passed = models.PositiveSmallIntegerField(default=0)
    n_failed = models.PositiveSmallIntegerField(default=0)
    reasons = models.JSONField(default=dict)  # check failure reason -> count
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(count__gte=1) & Q(count__lte=50), name="draft_count_1_to_50"),
        ]

    def __str__(self) -> str:
        return f"draft request {self.pk}: {self.next_index}/{self.count} of skill {self.skill_id}"


class ItemOrigin(models.Model):
    """Where a generated item came from: the template and its parameters (the answer key is recomputed from them,
    never read from model text), the model's story, and what the checks said."""

    item = models.OneToOneField("curriculum.Item", on_delete=models.CASCADE, related_name="origin")
    template = models.CharField(max_length=64)
    params = models.JSONField()
    story = models.TextField(blank=True)
    request = models.ForeignKey(
        ItemDraftRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="drafts"
    )
    index = models.PositiveSmallIntegerField(null=True, blank=True)
    checks = models.JSONField(default=dict)  # {"passed": bool, "reasons": [...]}
    backend_version = models.CharField(max_length=300, blank=True)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(default=0.0)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["request", "index"],
                condition=Q(request__isnull=False),
                name="one_draft_per_request_index",
            )
        ]

    def __str__(self) -> str:
        return f"origin of item {self.item_id}: {self.template}"
