from django.db import models


class Skill(models.Model):
    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    prerequisites = models.ManyToManyField("self", symmetrical=False, related_name="dependents", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.code


class Item(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        APPROVED = "approved"
        REJECTED = "rejected"

    class Source(models.TextChoices):
        IMPORT = "import"
        GENERATED = "generated"
        TEACHER = "teacher"

    code = models.SlugField(max_length=120, unique=True)
    skills = models.ManyToManyField(Skill, related_name="items")
    prompt = models.TextField()
    # The answer specification as curriculum.generation.answers.AnswerSpec.to_dict() writes it.
    answer = models.JSONField()
    difficulty = models.FloatField(default=0.0)
    # Answers folded into `difficulty` by the online calibration (tutor.services.calibration); the step size
    # shrinks as it grows.
    difficulty_n = models.PositiveIntegerField(default=0)
    solution = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.APPROVED)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.IMPORT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return self.code
