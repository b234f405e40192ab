from django.db import models
from django.db.models import Q


class PolicyVersion(models.Model):
    """A scheduling policy with its parameters and its off-policy evaluation report."""

    name = models.CharField(max_length=64)
    kind = models.CharField(max_length=64)  # key in tutor.policy's registry
    hyperparameters = models.JSONField(default=dict)
    params = models.BinaryField(default=b"")
    trained_through_decision_id = models.BigIntegerField(default=0)
    ope_report = models.JSONField(default=dict)
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "trained_through_decision_id"], name="policy_version_unique"),
            models.UniqueConstraint(fields=["active"], condition=Q(active=True), name="one_active_policy"),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.trained_through_decision_id}"


class Decision(models.Model):
    """One scheduling decision with the candidate distribution it was drawn from (for off-policy evaluation)."""

    learner = models.ForeignKey("learners.Learner", on_delete=models.CASCADE, related_name="decisions")
    item = models.ForeignKey("curriculum.Item", on_delete=models.PROTECT, related_name="+")
    policy_version = models.ForeignKey(PolicyVersion, null=True, on_delete=models.PROTECT, related_name="+")
    policy_name = models.CharField(max_length=100)
    propensity = models.FloatField()
    # [[item_id, probability, predicted P(correct)], ...] over the whole candidate set, so any later policy can be
    # scored on the same context (off-policy evaluation).
    candidates = models.JSONField()
    # What the policy saw: mastery per skill id, focus skill, step.
    context = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"decision {self.pk}: item {self.item_id} for {self.learner_id} by {self.policy_name}"


class PolicyExperiment(models.Model):
    """An A/B split: learners are assigned to the treatment by a stable hash of (experiment, learner), so a
    learner keeps their arm for the whole experiment; decisions record which version served them."""

    name = models.CharField(max_length=100, unique=True)
    control = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="+")
    treatment = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="+")
    treatment_share = models.FloatField(default=0.5)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["active"], condition=Q(active=True), name="one_active_experiment"),
            models.CheckConstraint(
                condition=Q(treatment_share__gte=0) & Q(treatment_share__lte=1), name="share_is_fraction"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.control_id} vs {self.treatment_id}"


class Watermark(models.Model):
    """How far a batch job has read an append-only log; moved in the same transaction as the job's writes, so a
    job run twice (or killed and re-run) never counts a row twice."""

    name = models.CharField(max_length=100, unique=True)
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}@{self.last_id}"


class BeliefCheckpoint(models.Model):
    """A belief policy's filter state for one learner after their first `n_attempts` answers, the last of them
    `last_attempt_id` (tutor.services.belief_checkpoints): a process that has not served the learner yet resumes
    from it instead of filtering their whole history. A cache: deleting rows loses nothing but time."""

    learner = models.ForeignKey("learners.Learner", on_delete=models.CASCADE, related_name="+")
    policy_version = models.ForeignKey(PolicyVersion, on_delete=models.CASCADE, related_name="+")
    model_digest = models.CharField(max_length=64)  # BeliefPolicy.model_digest of the model that filtered
    n_attempts = models.PositiveIntegerField()
    last_attempt_id = models.BigIntegerField()
    state = models.BinaryField()  # the model's dump_belief
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["learner", "policy_version"], name="belief_checkpoint_unique"),
        ]

    def __str__(self) -> str:
        return f"learner {self.learner_id} under version {self.policy_version_id} after {self.n_attempts} answers"
