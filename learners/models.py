from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q


class User(AbstractUser):
    class Role(models.TextChoices):
        LEARNER = "learner"
        TEACHER = "teacher"
        ADMIN = "admin"

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.LEARNER)


class Learner(models.Model):
    """A person who answers items. Simulated learners have no user account."""

    user = models.OneToOneField(User, null=True, blank=True, on_delete=models.CASCADE, related_name="learner")
    display_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.display_name


class Classroom(models.Model):
    name = models.CharField(max_length=150, unique=True)
    teachers = models.ManyToManyField(User, related_name="classrooms_taught", blank=True)
    learners = models.ManyToManyField(Learner, related_name="classrooms", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ApiToken(models.Model):
    """A bearer token; only its SHA-256 is stored, the key is shown once at creation."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"


class TracerVersion(models.Model):
    """Fitted parameters of a knowledge tracer; exactly one version is active at a time."""

    name = models.CharField(max_length=64)
    params = models.BinaryField()  # what Tracer.save wrote (npz or a torch state_dict), never a pickle
    trained_through_attempt_id = models.BigIntegerField(default=0)
    n_attempts = models.IntegerField(default=0)
    metrics = models.JSONField(default=dict)
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "trained_through_attempt_id"], name="tracer_version_unique"),
            models.UniqueConstraint(fields=["active"], condition=Q(active=True), name="one_active_tracer"),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.trained_through_attempt_id}"


class Attempt(models.Model):
    """One answer: an append-only event. Nothing updates or deletes attempts."""

    learner = models.ForeignKey(Learner, on_delete=models.PROTECT, related_name="attempts")
    item = models.ForeignKey("curriculum.Item", on_delete=models.PROTECT, related_name="attempts")
    response = models.TextField()
    correct = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)
    time_taken_ms = models.PositiveIntegerField(null=True, blank=True)
    client_attempt_id = models.CharField(max_length=64)
    decision = models.ForeignKey(
        "tutor.Decision", null=True, blank=True, on_delete=models.PROTECT, related_name="attempts"
    )
    policy_version = models.CharField(max_length=100, blank=True)
    propensity = models.FloatField(null=True, blank=True)
    tracer_version = models.ForeignKey(TracerVersion, null=True, on_delete=models.PROTECT, related_name="+")
    # The answer returned to the client, so a repeated submission gets the very same result.
    result = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["learner", "client_attempt_id"], name="attempt_idempotency_key"),
            models.UniqueConstraint(
                fields=["decision"], condition=Q(decision__isnull=False), name="one_attempt_per_decision"
            ),
        ]
        indexes = [models.Index(fields=["learner", "id"])]

    def __str__(self) -> str:
        return f"attempt {self.pk} by {self.learner_id} on {self.item_id}"


class LearnerState(models.Model):
    """The active tracer's state for one learner, folded over the attempt log up to `last_attempt_id`."""

    learner = models.OneToOneField(Learner, on_delete=models.CASCADE, related_name="state")
    tracer_version = models.ForeignKey(TracerVersion, null=True, on_delete=models.PROTECT, related_name="+")
    state = models.JSONField(default=dict)
    n_attempts = models.IntegerField(default=0)
    last_attempt_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"state of {self.learner_id} through attempt {self.last_attempt_id}"


class SkillMastery(models.Model):
    learner = models.ForeignKey(Learner, on_delete=models.CASCADE, related_name="mastery")
    skill = models.ForeignKey("curriculum.Skill", on_delete=models.CASCADE, related_name="+")
    p_mastery = models.FloatField()
    n_attempts = models.IntegerField(default=0)
    n_correct = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["learner", "skill"], name="mastery_unique")]
        constraints += [
            models.CheckConstraint(
                condition=Q(p_mastery__gte=0) & Q(p_mastery__lte=1), name="mastery_is_probability"
            )
        ]

    def __str__(self) -> str:
        return f"{self.learner_id}/{self.skill_id}: {self.p_mastery:.3f}"
